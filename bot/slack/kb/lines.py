"""Application rounds and facilities as the lines staff type in a form ("第5回 2026-04-01 2026-05-29",
"US 米国 1200"), and back: what is unchanged keeps its stored wording and notes."""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Sequence

from bot.slack.blockkit import JSON
from knowledge.normalize import nfkc
from prompts.messages import t

_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")


def _t(key: str, **values: object) -> str:
    return t(f"slack_kb_line_{key}", "ja", **values)


def text_value(value: object) -> str:
    """A stored value as a form shows it: dates as YYYY-MM-DD, nothing as ""."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _date_text(value: object) -> str:
    return text_value(value) if value else "-"


def format_round(round_: JSON) -> str:
    return f"{round_.get('name', '')} {_date_text(round_.get('opens'))} {_date_text(round_.get('closes'))}"


def _parse_date(token: str) -> dt.date | None:
    token = nfkc(token).replace("/", "-")
    if token in ("-", "−", "ー", "未定"):
        return None
    if not _DATE.match(token):
        raise ValueError(_t("not_date", token=token))
    try:
        return dt.date.fromisoformat("-".join(part.zfill(2) for part in token.split("-")))
    except ValueError:
        raise ValueError(_t("impossible_date", token=token)) from None


def parse_rounds(text: str, *, existing: Sequence[object] = ()) -> list[JSON]:
    """Lines "名称 開始日 締切日" as application rounds. A line equal to a stored round keeps that round
    whole (its source wording and announcement date); a new line is its own wording. Raises
    ValueError naming each bad line."""
    kept = {format_round(r): r for r in existing if isinstance(r, dict)}
    rounds, problems = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = " ".join(raw.split())
        if not line:
            continue
        if line in kept:
            rounds.append(copy.deepcopy(kept[line]))
            continue
        parts = line.split(" ")
        if len(parts) < 3:
            problems.append(_t("round_form", n=number))
            continue
        name, opens_text, closes_text = " ".join(parts[:-2]), parts[-2], parts[-1]
        try:
            opens, closes = _parse_date(opens_text), _parse_date(closes_text)
        except ValueError as exc:
            problems.append(_t("problem", n=number, problem=exc))
            continue
        if opens and closes and closes < opens:
            problems.append(_t("closes_before_opens", n=number, closes=closes, opens=opens))
            continue
        round_: JSON = {"name": name}
        if opens:
            round_["opens"] = opens
        if closes:
            round_["closes"] = closes
        round_["text"] = line
        rounds.append(round_)
    if problems:
        raise ValueError("\n".join(problems))
    return rounds


def format_facility(facility: JSON) -> str:
    area = facility.get("area_m2")
    area_text = "" if area is None else (f"{int(area)}" if float(area).is_integer() else f"{area}")
    return " ".join(x for x in (str(facility.get("country", "")), str(facility.get("region_ja", "")), area_text) if x)


def parse_facilities(text: str, *, existing: Sequence[object] = ()) -> list[JSON]:
    """Lines "国コード 地域 面積" (area optional) as facilities; notes of a facility already stored
    (same country and region) are kept. Raises ValueError naming each bad line."""
    notes = {(f.get("country"), f.get("region_ja")): f for f in existing if isinstance(f, dict)}
    kept = {format_facility(f): f for f in existing if isinstance(f, dict)}
    facilities, problems = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        if " ".join(raw.split()) in kept:
            facilities.append(copy.deepcopy(kept[" ".join(raw.split())]))
            continue
        parts = nfkc(raw).split()
        if not parts:
            continue
        country = parts[0].upper()
        if not re.fullmatch(r"[A-Z]{2}", country) or len(parts) < 2:
            problems.append(_t("facility_form", n=number))
            continue
        area: float | int | None = None
        rest = parts[1:]
        if len(rest) >= 2 and re.fullmatch(r"[\d,]+(\.\d+)?(m2|m²|㎡)?", rest[-1]):
            number_text = re.sub(r"[^\d.]", "", rest[-1])
            area = int(number_text) if number_text.isdigit() else float(number_text)
            rest = rest[:-1]
        region = " ".join(rest)
        facility: JSON = {"country": country, "region_ja": region}
        if area is not None:
            facility["area_m2"] = area
        before = notes.get((country, region))
        if before and before.get("notes_ja"):
            facility["notes_ja"] = before["notes_ja"]
        facilities.append(facility)
    if problems:
        raise ValueError("\n".join(problems))
    return facilities
