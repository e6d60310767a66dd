// njs for nginx: forward a call to the upstream, answer the client, and report the
// call's cost to Purser's /v1/usage from the `usage` block of the OpenAI-style answer.
// Load with `load_module modules/ngx_http_js_module.so;` (Debian: libnginx-mod-http-js).
// Buffers the answer, so it suits non-streaming calls; streamed calls are better
// reported by the upstream itself (LiteLLM's logger, see docs/gateways.md).

// Ask Purser about the key *and the model the body names*, then forward and report as proxy
// does (docs/gateway/nginx-models.conf). auth_request cannot carry the model: nginx runs it
// before it reads the body, so a js_set reading the body there sees none. Here the body has
// been read, and the check is a subrequest sharing this request's variables.
async function guard(r) {
    if (r.requestText === undefined && Number(r.headersIn['Content-Length'] || 0) > 0) {
        // a body nginx wrote to a file: its model cannot be read, so it cannot be let through
        answer(r, 413, 'body_too_large', 'The request body is too large for this gateway to check.');
        return;
    }
    r.variables.purser_model = modelOf(r.requestText);
    const check = await r.subrequest('/_purser_authz');
    const refusal = check.headersOut['X-Purser-Refusal'];
    if (check.status !== 200) {
        if (!refusal || check.status >= 500) {
            // Purser could not be asked (or failed): refuse, never let an unchecked call through
            answer(r, 503, 'authz_unavailable', 'Purser could not be asked about this key; try again shortly.');
            return;
        }
        r.headersOut['X-Purser-Refusal'] = refusal;
        r.headersOut['Content-Type'] = 'application/json';
        r.return(check.status, check.responseText);  // 401, 402 or 403 with Purser's own words
        return;
    }
    ['Workspace', 'Project', 'Key', 'Member'].forEach(function (part) {  // njs 0.7 has no for…of
        r.variables['purser_' + part.toLowerCase()] = check.headersOut['X-Purser-' + part] || '';
    });
    await proxy(r);
}

function modelOf(body) {
    try {
        const model = JSON.parse(body || '{}').model;
        return typeof model === 'string' ? model.slice(0, 200) : '';
    } catch (e) {
        return '';  // not JSON: nothing names a model, and Purser lets a call that names none through
    }
}

function answer(r, status, code, message) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({ error: { code: code, message: message } }));
}

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

export default { proxy, guard };
