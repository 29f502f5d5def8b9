"""The words of an answer, in the question's language: fixed phrases and the wording of figures.

Phrases are data a reviewer can read in one place (prompts/messages/answers.yaml, keys answer_…); figures are worded for each language
(7.9億円 / ¥790 million, 令和8年度 / FY2026), so an English answer never needs the reader to know Japanese
to get the fact, while the Japanese source wording follows as evidence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from knowledge.labels import label
from knowledge.schema import Budget, BudgetKind
from prompts.messages import t

_BUDGET_KIND = {
    "ja": {
        BudgetKind.REQUEST: "概算要求額",
        BudgetKind.INITIAL: "当初予算額",
        BudgetKind.SUPPLEMENTARY: "補正予算額",
        BudgetKind.FUND_TOTAL: "基金総額",
        BudgetKind.TOTAL: "総額",
        BudgetKind.ITEM_REQUEST: "事項要求",
    },
    "en": {
        BudgetKind.REQUEST: "budget request",
        BudgetKind.INITIAL: "initial budget",
        BudgetKind.SUPPLEMENTARY: "supplementary budget",
        BudgetKind.FUND_TOTAL: "fund total",
        BudgetKind.TOTAL: "total",
        BudgetKind.ITEM_REQUEST: "item request",
    },
}


def amount(oku_yen: float, language: str) -> str:
    """7.9 -> 7.9億円 / ¥790 million; 0.91 -> 91百万円 / ¥91 million; 3500 -> 3,500億円 / ¥350 billion."""
    if language == "ja":
        if oku_yen >= 1:
            return f"{oku_yen:,.10g}億円"
        return f"{oku_yen * 100:,.10g}百万円"
    if oku_yen >= 10:
        return f"¥{oku_yen / 10:,.10g} billion"
    return f"¥{oku_yen * 100:,.10g} million"


def fiscal_year(year: int, language: str) -> str:
    return (
        f"令和{year - 2018}年度"
        if language == "ja" and year >= 2019
        else (f"{year}年度" if language == "ja" else f"FY{year}")
    )


def budget_sentence(name: str, budget: Budget, language: str) -> str:
    year = fiscal_year(budget.fiscal_year, language)
    if budget.kind is BudgetKind.ITEM_REQUEST or budget.amount_oku_yen is None:
        return t("answer_budget_item", language, name=name, year=year)
    return t(
        "answer_budget",
        language,
        name=name,
        year=year,
        kind=_BUDGET_KIND[language][budget.kind],
        amount=amount(budget.amount_oku_yen, language),
    )


def budget_short(budget: Budget, language: str) -> str:
    year = fiscal_year(budget.fiscal_year, language)
    kind = _BUDGET_KIND[language][budget.kind]
    if budget.amount_oku_yen is None:
        return f"{year} {kind}"
    figure = amount(budget.amount_oku_yen, language)
    return f"{year}{kind} {figure}" if language == "ja" else f"{year} {kind} {figure}"


def date_text(date: dt.date, language: str) -> str:
    return f"{date.year}年{date.month}月{date.day}日" if language == "ja" else date.strftime("%-d %B %Y")


def round_name(number: int | None, text: str, language: str) -> str:
    if number is None:
        return text
    if language == "ja":
        return f"第{number}回"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number if number < 20 else number % 10, "th")
    return f"the {number}{suffix} round"


_REIWA = re.compile(r"令和\s*(\d+)\s*年度?")
_FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")


def english_figures(text: str) -> str:
    """Japanese wording of periods and rates in English: 令和3年度～令和11年度 -> FY2021–FY2029, 定額 -> fixed amount."""
    text = _REIWA.sub(lambda m: f"FY{2018 + int(m.group(1))}", text)
    text = re.sub(r"\s*[～〜~]\s*", "–", text)
    for japanese, english in _ENGLISH_WORDS:
        text = text.replace(japanese, english)
    text = re.sub(r"(\d+)\s*年間", r"\1 years", text)
    text = text.replace("（", " (").replace("）", ")").replace("、", ", ").replace("：", ": ")
    return re.sub(r"\s{2,}", " ", text).strip()


_ENGLISH_WORDS = (
    ("一部事業は", "some parts at "),
    ("で実施", ""),
    ("定額", "fixed amount"),
    ("以内", " or less"),
    ("研究期間", "research period"),
    ("事業実施期間", "implementation period"),
    ("一部", "partly "),
    ("半額", "half"),
    ("以上", " or more"),
)
_AMOUNT_JA = re.compile(r"(\d[\d,.]*)\s*(兆|億|百万|万)?円")
_UNITS_OKU = {"兆": 10000.0, "億": 1.0, "百万": 0.01, "万": 0.0001, None: 1e-8}


def english_values(text: str, signal: re.Pattern[str] | None) -> list[str]:
    """The figures a Japanese sentence states, worded in English (¥1.6 billion, FY2029, 2025, 130)."""
    if signal is None:
        return []
    values = []
    for match in signal.finditer(text):
        value = match.group()
        amount_match = _AMOUNT_JA.search(value)
        if amount_match:
            oku = float(amount_match.group(1).replace(",", "")) * _UNITS_OKU[amount_match.group(2)]
            values.append(amount(oku, "en"))
            continue
        value = english_figures(value)
        value = re.sub(
            r"(\d{4})\s*年\s*(\d{1,2})\s*月",
            lambda m: dt.date(int(m.group(1)), int(m.group(2)), 1).strftime("%B %Y"),
            value,
        )
        value = re.sub(r"(\d+)\s*[年月日件社名人]", r"\1", value)
        if re.search(r"\d", value) and re.fullmatch(r"[\x00-\x7f–¥ ]+", value):
            values.append(value.strip())
    return list(dict.fromkeys(values))[:3]


def join(values: list[str], language: str) -> str:
    return t("answer_sep", language).join(values)


def enum_labels(field: str, values: Sequence[object], language: str) -> str:
    return join(
        [label(field, str(getattr(v, "value", v)), "ja" if language == "ja" else "en") for v in values], language
    )
