"""Which records may be out of date: facts older than a set age, rounds all in the past, an old budget year."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from knowledge.loader import KnowledgeBase
from knowledge.schema import CuratedAnswer, Program, Record


@dataclass(frozen=True)
class StaleRecord:
    record: Record
    reasons: tuple[str, ...]
    age_days: int


def fiscal_year(day: dt.date) -> int:
    """Japan's fiscal year starts in April: 2026-03-31 is still FY2025 (令和7年度)."""
    return day.year if day.month >= 4 else day.year - 1


def reiwa(year: int) -> str:
    return f"令和{year - 2018}年度"


def _round_reasons(program: Program, today: dt.date) -> list[str]:
    dated = [(r, day) for r in program.rounds if (day := r.closes or r.opens) is not None]
    if not dated:
        return []
    if any(day >= today for _, day in dated):
        return []
    last_round, last_day = max(dated, key=lambda pair: pair[1])
    return [
        (
            f"募集回はすべて過去（最後は{last_round.name} {last_day:%Y-%m-%d}） / every application round is in the past "
            f"(last: {last_round.name}, {last_day:%Y-%m-%d})"
        )
    ]


def _budget_reasons(program: Program, today: dt.date) -> list[str]:
    if not program.budgets:
        return []
    latest = max(b.fiscal_year for b in program.budgets)
    current = fiscal_year(today)
    if latest >= current:
        return []
    return [
        (
            f"予算額は{reiwa(latest)}（FY{latest}）のもの、現在は{reiwa(current)} / budget figures are for FY{latest}, "
            f"now FY{current}"
        )
    ]


def stale_records(kb: KnowledgeBase, *, today: dt.date, max_age_days: int) -> list[StaleRecord]:
    """Active records needing a look, oldest first."""
    stale = []
    for record in kb.records:
        if record.status != "active":
            continue
        age = (today - record.as_of).days
        reasons = []
        if age > max_age_days:
            reasons.append(
                f"情報の日付 {record.as_of:%Y-%m-%d} から{age}日 / facts dated {record.as_of:%Y-%m-%d}, "
                f"{age} days old (limit {max_age_days})"
            )
        if isinstance(record, Program):
            reasons += _round_reasons(record, today) + _budget_reasons(record, today)
        if reasons:
            stale.append(StaleRecord(record=record, reasons=tuple(reasons), age_days=age))
    return sorted(stale, key=lambda s: (-s.age_days, s.record.id))


def stale_answers(kb: KnowledgeBase, *, today: dt.date, max_age_days: int) -> list[tuple[CuratedAnswer, int]]:
    """Active curated answers last checked over `max_age_days` ago, with their age, oldest first: the desk no
    longer gives them, so staff should check them again (and save them with a new as_of)."""
    aged = [(answer, (today - answer.as_of).days) for answer in kb.answers if answer.status == "active"]
    return sorted(((a, age) for a, age in aged if age > max_age_days), key=lambda pair: (-pair[1], pair[0].id))
