"""A statement as CSV: one row per line item and a totals row, amounts exact to the micro-dollar.

Kinds, in order: ``opening`` (the pool's balance when the month began), ``topup`` (each,
with who and the note), ``spend`` (the month's own, per project, key and model),
``correction`` (a closed month's spend that came in late, with the month it belongs to),
``debit`` (the pool's spend entries, a day at a time), ``closing``, then ``total``: spend
plus corrections, the usage this statement accounts for. Amounts are dollars with six
decimals, written from the integer micro-dollars (never through a float), and the
micro-dollars themselves, so the file sums back exactly.
"""

from __future__ import annotations

import csv
import io

from store.statements import Statement

COLUMNS = ("kind", "date", "project", "member", "key", "model", "note", "amount_usd", "amount_micros", "events")


def usd(micros: int) -> str:
    """Exact dollars with six decimals: ``-1_234_567`` → ``-1.234567``."""
    whole, rest = divmod(abs(int(micros)), 1_000_000)
    return f"{'-' if micros < 0 else ''}{whole}.{rest:06d}"


#: what a spreadsheet reads as the start of a formula in a cell
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(text: str) -> str:
    """A cell people typed (a model name a gateway passed on, a top-up note) as text, never a formula.

    A spreadsheet runs a cell starting with = + - @ as a formula (OWASP's CSV injection); a
    leading ' makes it show the text as written.
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def statement_csv(st: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)

    def row(kind: str, when: str = "", project: str = "", member: str = "", key: str = "", model: str = "", note: str = "", micros: int | None = None, events: int | str = "") -> None:
        texts = (inert(t) for t in (project, member, key, model, note))
        writer.writerow((kind, when, *texts, "" if micros is None else usd(micros), "" if micros is None else micros, events))

    start = f"{st.start:%Y-%m-%d}"
    opening_note = "" if st.opening_micros is not None else "the pool was not funded"
    row("opening", start, note=opening_note, micros=st.opening_micros or 0)
    for t in st.topups:
        row("topup", t.at.isoformat(timespec="seconds"), member=t.member or "", note=t.note or "", micros=t.amount_micros, events=1)
    for line in st.of("spend"):
        row("spend", f"{st.month:%Y-%m}", line.project, line.member, line.key, line.model, micros=line.amount_micros, events=line.events)
    for line in st.of("correction"):
        row("correction", f"{line.month:%Y-%m}", line.project, line.member, line.key, line.model, note="recorded after its month's statement closed", micros=line.amount_micros, events=line.events)
    for day, amount, entries in st.debits:
        row("debit", f"{day:%Y-%m-%d}", note="the pool's spend entries that day", micros=amount, events=entries)
    closing_note = "" if st.balances else "opening + top-ups - debits does not equal this: the ledger needs looking into"
    row("closing", f"{st.last_day:%Y-%m-%d}", note=closing_note, micros=st.closing_micros or 0)
    row("total", f"{st.month:%Y-%m}", note="spend + corrections", micros=st.spend_micros + st.corrections_micros, events=st.spend_events + st.correction_events)
    return out.getvalue()
