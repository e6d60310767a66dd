// njs for nginx: forward a call to the upstream, answer the client, and report the
// call's cost to Purser's /v1/usage from the `usage` block of the OpenAI-style answer.
// Load with `load_module modules/ngx_http_js_module.so;` (Debian: libnginx-mod-http-js).
// Buffers the answer, so it suits non-streaming calls; streamed calls are better
// reported by the upstream itself (LiteLLM's logger, see docs/gateways.md).

async function proxy(r) {
    const reply = await r.subrequest('/_upstream' + r.uri, { method: r.method, body: r.requestText, args: r.variables.args || '' });
    const type = reply.headersOut['Content-Type'];
    if (type) {
        r.headersOut['Content-Type'] = type;
    }
    await report(r, reply);
    r.return(reply.status, reply.responseText);
}

async function report(r, reply) {
    if (reply.status >= 300) {
        return;
    }
    let answer;
    try {
        answer = JSON.parse(reply.responseText);
    } catch (e) {
        return;
    }
    const usage = answer.usage;
    if (!usage) {
        return;
    }
    const bearer = (r.headersIn['Authorization'] || '').replace(/^Bearer\s+/i, '');
    const event = {
        external_id: 'nginx:' + r.variables.request_id,
        key_hash: require('crypto').createHash('sha256').update(bearer).digest('hex'),
        model: answer.model || '',
        prompt_tokens: usage.prompt_tokens || 0,
        completion_tokens: usage.completion_tokens || 0,
    };
    try {
        const sent = await ngx.fetch(r.variables.purser_usage_url, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + r.variables.purser_ingest_token },
            body: JSON.stringify({ events: [event] }),
        });
        if (sent.status !== 200) {
            r.error('purser usage report answered ' + sent.status);
        }
    } catch (e) {
        // The call itself succeeded; a lost report shows up as a gap, never as a failed call.
        r.error('purser usage report failed: ' + e);
    }
}

export default { proxy };
