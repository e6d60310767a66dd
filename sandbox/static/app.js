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
  const keyOptions = state.keys.map(k => `<option value="${k.id}">${k.label}</option>`).join("");
  if (keySelect.dataset.options !== keyOptions) { const keep = keySelect.value; keySelect.innerHTML = keyOptions; keySelect.dataset.options = keyOptions; if (keep) keySelect.value = keep; }
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
    for (const m of messages) {
      const node = document.createElement("div");
      node.className = "message" + (m.ephemeral ? " ephemeral" : "");
      node.dataset.ts = m.ts;
      const author = document.createElement("div");
      author.className = "author";
      author.innerHTML = `Purser <small>${new Date(parseFloat(m.ts.split(".")[0]) * 1000).toLocaleTimeString()}${m.edited ? " (edited)" : ""}</small>`;
      node.appendChild(author);
      if (m.ephemeral) { const o = document.createElement("div"); o.className = "only-you"; o.textContent = "Only visible to you"; node.appendChild(o); }
      if (m.blocks && m.blocks.length) node.appendChild(BlockKit.render(m.blocks, { onClick: (el, ctx) => click(el, ctx, { channel: current, ts: m.ts }) }));
      else { const t = document.createElement("div"); t.innerHTML = BlockKit.mrkdwn(m.text); node.appendChild(t); }
      box.appendChild(node);
    }
    box.scrollTop = box.scrollHeight;
  }
  lastRendered = snapshot;
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
  await call("command", { channel: current === "home" ? "D" + me.slice(1) : current, text });
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
