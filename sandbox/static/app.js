// The sandbox page: polls the sandbox for what the chosen person sees, and sends what
// they type or click to the sandbox, which passes it to Purser as Slack would.
"use strict";

const params = new URLSearchParams(location.search);
let me = params.get("user") || localStorage.getItem("purser-user") || "";
let current = params.get("channel") || "C0GENERAL1";
let state = null;
let shownModal = null;
let lastRendered = "";

async function call(path, body) {
  const res = await fetch(`/sandbox/${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: me, ...body }) });
  return res.json();
}

async function refresh() {
  const asked = me;
  const res = await fetch(`/sandbox/state?user=${encodeURIComponent(asked)}`);
  const answer = await res.json();
  // The person was switched while this was on its way: it shows the one before, so drop it
  // (taking its user would switch the page back).
  if (me !== asked) return;
  state = answer;
  me = state.user;
  render();
}

function render() {
  for (const p of state.people) BlockKit.people[p.id] = p.name.split(" ")[0];
  for (const c of state.channels) if (c.name.startsWith("#")) BlockKit.channels[c.id] = c.name.slice(1);
  const who = document.getElementById("who");
  if (who.options.length !== state.people.length) {
    who.innerHTML = state.people.map(p => `<option value="${p.id}">${p.name}</option>`).join("");
  }
  who.value = me;
  const nav = document.getElementById("channels");
  nav.innerHTML = "";
  for (const c of state.channels) {
    const b = document.createElement("button");
    b.textContent = c.name;
    b.dataset.channel = c.id;
    if (c.id === current) b.className = "active";
    b.addEventListener("click", () => { current = c.id; lastRendered = ""; render(); });
    nav.appendChild(b);
  }
  document.getElementById("home-tab").classList.toggle("active", current === "home");
  const keySelect = document.getElementById("spend-key");
  // Spend can only be reported on a key that still works; the list below shows them all.
  const live = state.keys.filter(k => k.status !== "revoked");
  const keyOptions = live.map(k => `<option value="${k.id}">${esc(k.label)}</option>`).join("");
  if (keySelect.dataset.options !== keyOptions) { const keep = keySelect.value; keySelect.innerHTML = keyOptions; keySelect.dataset.options = keyOptions; if (keep) keySelect.value = keep; }
  renderKeys();
  renderMain();
  renderModal();
}

function renderMain() {
  const title = document.getElementById("title");
  const box = document.getElementById("messages");
  let snapshot;
  if (current === "home") {
    title.textContent = "Purser · Home";
    snapshot = JSON.stringify(state.home);
    if (snapshot === lastRendered) return;
    box.innerHTML = "";
    if (!state.home) { box.textContent = "Opening…"; }
    else box.appendChild(BlockKit.render(state.home.blocks, { onClick: (el, ctx) => click(el, ctx, { view_id: "home" }) }));
  } else {
    const channel = state.channels.find(c => c.id === current) || state.channels[0];
    title.textContent = channel.name;
    const messages = state.messages[current] || [];
    snapshot = JSON.stringify(messages);
    if (snapshot === lastRendered) return;
    box.innerHTML = "";
    // A thread's replies go right under the message they answer, indented, as Slack's
    // thread view would show them; a reply whose parent is not here shows on its own.
    const here = new Set(messages.map(m => m.ts));
    const replies = {};
    for (const m of messages) if (inThread(m, here)) (replies[m.thread_ts] = replies[m.thread_ts] || []).push(m);
    for (const m of messages) {
      if (inThread(m, here)) continue;
      box.appendChild(messageNode(m, false));
      for (const r of replies[m.ts] || []) box.appendChild(messageNode(r, true));
    }
    box.scrollTop = box.scrollHeight;
  }
  lastRendered = snapshot;
}

function inThread(m, here) {
  return m.thread_ts && m.thread_ts !== m.ts && here.has(m.thread_ts);
}

function messageNode(m, reply) {
  const node = document.createElement("div");
  node.className = "message" + (m.ephemeral ? " ephemeral" : "") + (reply ? " reply" : "");
  node.dataset.ts = m.ts;
  if (m.author) node.dataset.author = m.author;
  const author = document.createElement("div");
  author.className = "author";
  // A person's message carries who wrote it; everything else here is Purser's.
  author.textContent = m.author ? (BlockKit.people[m.author] || m.author) : "Purser";
  const when = document.createElement("small");
  when.textContent = new Date(parseFloat(m.ts.split(".")[0]) * 1000).toLocaleTimeString() + (m.edited ? " (edited)" : "") + (reply ? " · in thread" : "");
  author.appendChild(when);
  node.appendChild(author);
  if (m.ephemeral) { const o = document.createElement("div"); o.className = "only-you"; o.textContent = "Only visible to you"; node.appendChild(o); }
  if (m.blocks && m.blocks.length) node.appendChild(BlockKit.render(m.blocks, { onClick: (el, ctx) => click(el, ctx, { channel: current, ts: m.ts }) }));
  else if (m.text || !(m.files || []).length) { const t = document.createElement("div"); t.className = "text"; t.innerHTML = BlockKit.mrkdwn(m.text); node.appendChild(t); }
  for (const f of m.files || []) node.appendChild(fileNode(f));
  return node;
}

// A shared file as Slack shows it: an image inline with its alt text, anything else as a download.
function fileNode(f) {
  const src = `/files/${encodeURIComponent(f.id)}`;
  if ((f.mimetype || "").startsWith("image/")) return BlockKit.image(src, f.alt_txt || f.title || f.name, f.title);
  const link = document.createElement("a");
  link.className = "file-link"; link.href = src; link.download = f.name; link.textContent = `${f.title || f.name} (${f.name})`;
  return link;
}

function renderKeys() {
  const list = document.getElementById("key-list");
  const snapshot = JSON.stringify(state.keys);
  if (list.dataset.snapshot === snapshot) return;
  list.dataset.snapshot = snapshot;
  list.innerHTML = "";
  for (const k of state.keys) {
    const item = document.createElement("li");
    item.dataset.keyId = k.id;
    item.dataset.status = k.status;
    item.className = k.status;
    const label = document.createElement("span"); label.textContent = k.label;
    const status = document.createElement("span"); status.className = "key-status";
    status.textContent = k.status + (k.why && k.status !== "active" ? ` · ${k.why}` : "");
    item.append(label, " ", status);
    list.appendChild(item);
  }
  if (!state.keys.length) list.innerHTML = "<li>No keys yet.</li>";
}

function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

async function click(el, ctx, where) {
  await call("click", { action_id: el.action_id, value: el.value || "", block_id: ctx.blockId || "", ...where });
  await refresh();
}

function renderModal() {
  const backdrop = document.getElementById("modal-backdrop");
  const modal = state.modal;
  if (!modal) { backdrop.hidden = true; shownModal = null; return; }
  const key = modal.id + JSON.stringify(modal.blocks);
  if (shownModal === key) return;
  shownModal = key;
  const box = document.getElementById("modal");
  box.innerHTML = "";
  const h = document.createElement("h2"); h.textContent = modal.title.text; box.appendChild(h);
  box.appendChild(BlockKit.render(modal.blocks, { onClick: () => {} }));
  const footer = document.createElement("footer");
  const close = document.createElement("button"); close.textContent = (modal.close && modal.close.text) || "Close";
  close.addEventListener("click", async () => { await call("close", { view_id: modal.id }); await refresh(); });
  footer.appendChild(close);
  if (modal.submit) {
    const submit = document.createElement("button"); submit.className = "submit"; submit.textContent = modal.submit.text;
    submit.addEventListener("click", async () => {
      const values = {};
      for (const input of box.querySelectorAll("[name]")) values[input.name] = input.value;
      const answer = await call("submit", { view_id: modal.id, values });
      for (const e of box.querySelectorAll(".error")) e.textContent = "";
      if (!answer.ok && answer.errors) {
        for (const [block, message] of Object.entries(answer.errors)) {
          const node = box.querySelector(`[data-block-id="${CSS.escape(block)}"] .error`);
          if (node) node.textContent = message;
        }
        return;
      }
      await refresh();
    });
    footer.appendChild(submit);
  }
  box.appendChild(footer);
  backdrop.hidden = false;
}

document.getElementById("who").addEventListener("change", e => {
  me = e.target.value; localStorage.setItem("purser-user", me); lastRendered = ""; shownModal = null;
  if (current === "home") call("home", {});
  refresh();
});
document.getElementById("home-tab").addEventListener("click", async () => { current = "home"; lastRendered = ""; await call("home", {}); refresh(); });
document.getElementById("composer").addEventListener("submit", async e => {
  e.preventDefault();
  const input = document.getElementById("message-box");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  // A slash command goes to Purser as a command; anything else is a message in the channel
  // (which Purser sees as a Slack message event, and scans for leaked keys).
  await call("send", { channel: current === "home" ? "D" + me.slice(1) : current, text });
  await refresh();
});
document.getElementById("spend-go").addEventListener("click", async () => {
  const out = document.getElementById("spend-result");
  const answer = await call("spend", { key_id: document.getElementById("spend-key").value, amount: document.getElementById("spend-amount").value });
  out.textContent = answer.ok ? ("Recorded." + (answer.crossings.length ? " " + answer.crossings.join("; ").replace(/`/g, "") : "") + (answer.paused.length ? " Paused: " + answer.paused.join(", ") : "")) : (answer.error || "Refused.");
  await refresh();
});

refresh();
setInterval(refresh, 800);
