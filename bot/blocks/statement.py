"""The monthly statement as a message, and the chart that goes with it."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks.common import code, context, divider, fields, header, lit, mention, money, section, when
from bot.charts import SpendChart
from store.statements import Statement, month_name

#: lines shown per split; the CSV has all of them
MOST_SHOWN = 12


def _who(member: str | None) -> str:
    if not member or member == "unknown":
        return "Purser (an approved request or the operator)" if member is None else "unknown"
    return mention(member) if member.isalnum() and member[:1] in "UW" else lit(member, 80)


def _state(st: Statement) -> str:
    if st.closed:
        return f"Closed {when(st.closed_at)}"
    if st.over:
        return f"Preview, not closed: as of {when(st.closed_at)}. It closes when it is posted, on the 1st."
    return f"Preview, not closed: {month_name(st.month)} so far, as of {when(st.closed_at)}"


def _split(title: str, rows: list[tuple[str, int, int]], show=lit) -> str:
    shown = [f"• {show(label)} — {money(amount)} ({events} call{'s' if events != 1 else ''})" for label, amount, events in rows[:MOST_SHOWN]]
    if len(rows) > MOST_SHOWN:
        shown.append(f"…and {len(rows) - MOST_SHOWN} more, in the CSV")
    return f"*{title}*\n" + "\n".join(shown)


def statement_message(st: Statement) -> tuple[str, list[Block]]:
    pool = money(st.closing_micros) if st.closing_micros is not None else "not funded"
    text = f"Statement for {st.workspace}, {month_name(st.month)}: spend {money(st.spend_micros)}, corrections {money(st.corrections_micros)}, closing balance {pool}"
    if not st.closed:
        text += " (preview, not closed)"
    blocks: list[Block] = [header(f"Statement · {st.workspace} · {month_name(st.month)}"), context(_state(st))]
    opening = money(st.opening_micros) if st.opening_micros is not None else "not funded"
    blocks.append(
        fields(
            [
                ("Opening balance", opening),
                ("Top-ups", f"{money(st.topups_micros)} ({len(st.topups)})"),
                ("Debited for spend", money(-st.debits_micros)),
                ("Closing balance", pool),
                ("Spend", f"{money(st.spend_micros)} ({st.spend_events} calls)"),
                ("Corrections", f"{money(st.corrections_micros)} ({st.correction_events} calls)"),
            ]
        )
    )
    if not st.balances:
        sums = (st.opening_micros or 0) + st.topups_micros + st.debits_micros
        blocks.append(
            section(
                f"⚠️ *The pool's ledger does not add up*: opening {money(st.opening_micros or 0)} + top-ups {money(st.topups_micros)} − debits "
                f"{money(-st.debits_micros)} = {money(sums)}, but the closing balance is {money(st.closing_micros or 0)}. "
                "An entry was changed or removed: compare the CSV with `purser audit export` and the credit ledger."
            )
        )
    if st.differs_from_posted:
        blocks.append(section(f"⚠️ *These figures differ from the statement posted when it closed* ({', '.join(st.differs_from_posted)}): usage or ledger rows of the month were changed since. Investigate before relying on either."))
    if st.topups:
        lines = [f"• {when(t.at)} {_who(t.member)} {money(t.amount_micros)}" + (f" — {lit(t.note, 120)}" if t.note else "") for t in st.topups[:MOST_SHOWN]]
        blocks += [divider(), section("*Top-ups*\n" + "\n".join(lines))]
    if st.spend_events:
        blocks += [divider(), section(_split("Spend by project", st.split("project"), code)), section(_split("By member", st.split("member"), _who)), section(_split("By model", st.split("model"), code))]
    else:
        blocks.append(context(f"Nothing was spent in {month_name(st.month)}."))
    corrections = st.of("correction")
    if corrections:
        lines = [f"• {month_name(c.month)} {code(c.project)} {_who(c.member)} {code(c.model)} {money(c.amount_micros)} ({c.events})" for c in corrections[:MOST_SHOWN]]
        more = f"\n…and {len(corrections) - MOST_SHOWN} more, in the CSV" if len(corrections) > MOST_SHOWN else ""
        blocks += [divider(), section("*Corrections*: spend of months already closed, recorded after their statements\n" + "\n".join(lines) + more)]
    limits = " · ".join(f"{lit(label)} {money(micros)} {period}" for label, micros, period in st.limits) or "no cap and no budgets"
    blocks.append(section(f"*In force*: {limits}"))
    chain = "🔒 The audit chain verifies" if st.chain.ok else f"🚨 *The audit chain is broken*: {lit(st.chain.summary, 300)} Run `purser audit verify` and investigate."
    blocks.append(context(f"{chain} · {st.audit_events} audit event(s) in {month_name(st.month)}"))
    return text, blocks


def statement_chart(st: Statement) -> SpendChart:
    """The month's own spend per project and day, against the monthly cap and budgets."""
    monthly = [(label, micros) for label, micros, period in st.limits if period == "monthly"]
    return SpendChart(f"Spend in {st.workspace}, {month_name(st.month)}", st.start.date(), st.end.date(), st.last_day, st.daily, monthly)


def file_name(st: Statement, ext: str) -> str:
    return f"statement-{st.workspace}-{st.month:%Y-%m}.{ext}"
