"""`purser statement`: a workspace's monthly statement on the terminal, as CSV, or closed and posted."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from purser.cli_support import TEAM_HELP, _fail, _operator, _run, _workspace_id
from store.errors import DomainError
from store.money import format_money


def statement(
    workspace: str = typer.Argument(..., help="Workspace slug."),
    month: Optional[str] = typer.Option(None, "--month", "-m", help="The month, like 2026-11 (default: this month so far, a preview)."),
    post: bool = typer.Option(False, "--post", help="Close the month (it must be over) and post it to the Admins and Billing Managers, as the clock does on the 1st."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write every line item as CSV to this file."),
    team: Optional[str] = typer.Option(None, help=TEAM_HELP, show_default=False),
) -> None:
    """Print a workspace's monthly statement: the pool, top-ups, spend, corrections, limits and the audit chain."""
    from store.statement_csv import statement_csv
    from store.statements import close_statement, parse_month, view_statement

    try:
        wanted = parse_month(month) if month else None
    except DomainError as exc:
        _fail(exc.message, 2)
    if post and wanted is None:
        _fail("--post closes a month that is over: say which with --month, like --month 2026-11.", 2)
    ws_id = _workspace_id(workspace, team)
    st = _run(close_statement, _operator(), ws_id, wanted) if post else _run(view_statement, _operator(), ws_id, wanted)
    typer.echo(statement_text(st))
    if post:
        typer.echo("Posted to the workspace's Admins and Billing Managers (a statement posted before is edited in place, never sent twice).")
    if csv_path is not None:
        csv_path.write_text(statement_csv(st), encoding="utf-8")
        typer.echo(f"Wrote every line item to {csv_path}.", err=True)


def _money(micros: int | None) -> str:
    return "not funded" if micros is None else format_money(micros)


def _split(title: str, rows: list[tuple[str, int, int]]) -> list[str]:
    return [f"  {title}:"] + [f"    {label:<40} {format_money(amount):>16} ({events} calls)" for label, amount, events in rows]


def statement_text(st) -> str:
    from store.statements import month_name

    when = f"{st.closed_at:%Y-%m-%d %H:%M} UTC"
    state = f"closed {when}" if st.closed else f"PREVIEW, NOT CLOSED: as of {when}"
    lines = [f"Statement for {st.workspace}, {month_name(st.month)} — {state}", ""]
    lines.append(f"Opening balance    {_money(st.opening_micros):>16}")
    lines.append(f"Top-ups            {format_money(st.topups_micros):>16}")
    lines += [f"  {t.at:%Y-%m-%d %H:%M} UTC  {t.member or 'Purser'}  {format_money(t.amount_micros)}  {t.note or ''}".rstrip() for t in st.topups]
    lines.append(f"Debited for spend  {format_money(-st.debits_micros):>16}")
    lines.append(f"Closing balance    {_money(st.closing_micros):>16}")
    if not st.balances:
        lines.append(f"WARNING: opening + top-ups - debits = {format_money((st.opening_micros or 0) + st.topups_micros + st.debits_micros)}, not the closing balance: the credit ledger was changed; investigate it.")
    if st.differs_from_posted:
        lines.append(f"WARNING: these figures differ from the statement posted when it closed ({', '.join(st.differs_from_posted)}): usage or ledger rows were changed since.")
    lines += ["", f"Spend              {format_money(st.spend_micros):>16} ({st.spend_events} calls)"]
    if st.spend_events:
        lines += _split("by project", st.split("project")) + _split("by member", st.split("member")) + _split("by model", st.split("model"))
    lines.append(f"Corrections        {format_money(st.corrections_micros):>16} ({st.correction_events} calls, spend of closed months recorded late)")
    lines += [f"  {c.month:%Y-%m} {c.project} {c.member} {c.model} {format_money(c.amount_micros)} ({c.events})" for c in st.of("correction")]
    limits = "; ".join(f"{label} {format_money(micros)} {period}" for label, micros, period in st.limits) or "no cap and no budgets"
    lines += ["", f"In force: {limits}", f"Audit: {st.chain.summary} {st.audit_events} event(s) in {month_name(st.month)}."]
    return "\n".join(lines)
