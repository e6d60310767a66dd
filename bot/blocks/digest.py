"""The audit digest posted to a workspace's audit channel."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks.common import code, context, divider, header, lit, section
from store.digests import Digest


def _actor(actor: str) -> str:
    if actor.startswith("slack:"):
        uid = actor.split(":", 1)[1]
        return f"<@{uid}>" if uid.isalnum() else lit(uid)
    return lit(actor.replace("system:", "Purser "))


def _line(e) -> str:
    return f"• {e.at:%m-%d %H:%M} {_actor(e.actor)} {code(e.action)} {lit(e.resource, 80)}"


def digest_message(d: Digest) -> tuple[str, list[Block]]:
    span = f"{d.since:%Y-%m-%d} → {d.until:%Y-%m-%d}"
    chain = "🔒 The audit chain verifies." if d.verification.ok else f"🚨 *The audit chain is broken*: {lit(d.verification.summary, 400)} Run `purser audit verify` and investigate."
    text = f"Audit digest for {d.workspace}, {span}: {d.total} change(s), {len(d.denials)} denied attempt(s)"
    blocks: list[Block] = [header(f"Audit digest · {d.workspace}"), context(f"{span} · {d.total} change(s) · {len(d.denials)} denied attempt(s)"), section(chain)]
    if d.counts:
        blocks.append(section("*By action*\n" + "\n".join(f"{code(action)} × {n}" for action, n in list(d.counts.items())[:30])))
    if d.notable:
        more = f"\n…and {d.more_notable} more" if d.more_notable else ""
        blocks += [divider(), section("*Notable*\n" + "\n".join(_line(e) for e in d.notable) + more)]
    if d.denials:
        blocks += [divider(), section("*Denied attempts*\n" + "\n".join(_line(e) for e in d.denials))]
    if d.gateway_refusals:
        blocks += [divider(), section("*Refused at the gateway*\n" + "\n".join(f"• {code(name)} {code(reason)} × {n}" for name, reason, n in d.gateway_refusals))]
    if not d.counts and not d.denials and not d.gateway_refusals:
        blocks.append(context("Nothing changed."))
    return text, blocks
