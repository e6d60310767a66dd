// Renders the Block Kit Purser sends (header, section with text and fields, context,
// divider, actions with buttons, images, inputs in modals) and Slack's mrkdwn, safely:
// everything is HTML-escaped before any formatting is applied.
"use strict";

const BlockKit = (() => {
  const people = {};
  const channels = {};  // id -> name, so <#C…> reads as the channel's name, as in Slack

  function esc(text) {
    // Slack text arrives with &amp; &lt; &gt; already escaped; escape only what is not an entity.
    return String(text)
      .replace(/&(?!(amp|lt|gt|quot|#\d+);)/g, "&amp;")
      .replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function token(inner) {
    const [target, label] = inner.split("|");
    if (target.startsWith("@")) return `<span class="mention">@${esc(people[target.slice(1)] || target.slice(1))}</span>`;
    if (target.startsWith("#")) return `<span class="mention">#${esc(label || channels[target.slice(1)] || target.slice(1))}</span>`;
    if (target.startsWith("!")) return `<span class="mention">@${esc(target.slice(1))}</span>`;
    // A permalink to a message: slack.com knows nothing of the sandbox's, so open its channel here.
    const permalink = target.match(/^https:\/\/slack\.com\/archives\/([A-Z0-9]+)\/p\d+$/);
    if (permalink) return `<a href="/?channel=${esc(permalink[1])}">${esc(label || target)}</a>`;
    if (/^(https?|mailto):/.test(target)) return `<a href="${esc(target)}" rel="noopener noreferrer" target="_blank">${esc(label || target)}</a>`;
    return esc(`<${inner}>`);
  }

  function inline(text) {
    let out = "";
    let rest = String(text);
    const special = /<([^<>]+)>/;
    while (rest.length) {
      const m = rest.match(special);
      if (!m) { out += format(esc(rest)); break; }
      out += format(esc(rest.slice(0, m.index))) + token(m[1]);
      rest = rest.slice(m.index + m[0].length);
    }
    return out;
  }

  function format(html) {
    return html
      .replace(/`([^`\n]+)`/g, "<code>$1</code>")
      .replace(/(^|[\s(])\*([^*\n]+)\*(?=[\s).,:;!?]|$)/g, "$1<b>$2</b>")
      .replace(/(^|[\s(])_([^_\n]+)_(?=[\s).,:;!?]|$)/g, "$1<i>$2</i>")
      .replace(/(^|[\s(])~([^~\n]+)~(?=[\s).,:;!?]|$)/g, "$1<s>$2</s>");
  }

  function mrkdwn(text) {
    const blocks = String(text).split("```");
    return blocks.map((part, i) => {
      if (i % 2) return `<pre>${esc(part)}</pre>`;
      return part.split("\n").map(line => line.startsWith("&gt;") || line.startsWith(">")
        ? `<blockquote>${inline(line.replace(/^(&gt;|>)\s?/, ""))}</blockquote>`
        : inline(line)).join("<br>");
    }).join("");
  }

  function text(obj) {
    if (!obj) return "";
    return obj.type === "plain_text" ? `<span class="bk-plain-inline">${esc(obj.text)}</span>` : mrkdwn(obj.text);
  }

  function button(el, ctx) {
    const b = document.createElement("button");
    b.className = "bk-button" + (el.style ? " " + el.style : "");
    b.textContent = el.text.text;
    b.dataset.actionId = el.action_id;
    b.addEventListener("click", () => ctx.onClick(el, ctx));
    return b;
  }

  function render(blocks, ctx) {
    const root = document.createElement("div");
    for (const block of blocks || []) {
      let node;
      switch (block.type) {
        case "header":
          node = document.createElement("div"); node.className = "bk-header"; node.textContent = block.text.text; break;
        case "section":
          node = document.createElement("div"); node.className = "bk-section";
          if (block.text) {
            if (block.text.type === "plain_text") { node.innerHTML = `<div class="bk-plain">${esc(block.text.text)}</div>`; }
            else node.innerHTML = mrkdwn(block.text.text);
          }
          if (block.fields) {
            const grid = document.createElement("div"); grid.className = "bk-fields";
            grid.innerHTML = block.fields.map(f => `<div>${text(f)}</div>`).join("");
            node.appendChild(grid);
          }
          break;
        case "context":
          node = document.createElement("div"); node.className = "bk-context";
          node.innerHTML = (block.elements || []).map(e => text(e)).join(" ");
          break;
        case "divider":
          node = document.createElement("hr"); node.className = "bk-divider"; break;
        case "actions":
          node = document.createElement("div"); node.className = "bk-actions";
          for (const el of block.elements || []) if (el.type === "button") node.appendChild(button(el, { ...ctx, blockId: block.block_id }));
          break;
        case "input": {
          node = document.createElement("div"); node.className = "bk-input"; node.dataset.blockId = block.block_id;
          const label = document.createElement("label"); label.textContent = block.label.text + (block.optional ? " (optional)" : "");
          const el = block.element || {};
          const input = document.createElement(el.multiline ? "textarea" : "input");
          input.name = block.block_id; input.placeholder = (el.placeholder && el.placeholder.text) || "";
          label.appendChild(input);
          node.appendChild(label);
          if (block.hint) { const h = document.createElement("div"); h.className = "hint"; h.textContent = block.hint.text; node.appendChild(h); }
          const err = document.createElement("div"); err.className = "error"; node.appendChild(err);
          break;
        }
        case "image": {
          // An uploaded file (slack_file) is served by the sandbox at /files/<id>, as Slack serves its own.
          const file = block.slack_file || {};
          const src = file.id ? `/files/${encodeURIComponent(file.id)}` : (block.image_url || file.url || "");
          node = image(src, block.alt_text, block.title && block.title.text);
          break;
        }
        default:
          node = document.createElement("div"); node.textContent = `[${block.type}]`;
      }
      root.appendChild(node);
    }
    return root;
  }

  function image(src, alt, title) {
    const figure = document.createElement("figure"); figure.className = "bk-image";
    if (title) { const caption = document.createElement("figcaption"); caption.textContent = title; figure.appendChild(caption); }
    const img = document.createElement("img");
    img.src = src; img.alt = alt || ""; if (title) img.title = title;
    img.loading = "lazy";
    figure.appendChild(img);
    return figure;
  }

  return { render, mrkdwn, image, people, channels };
})();
