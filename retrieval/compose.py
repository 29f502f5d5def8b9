"""The words of an answer, in the question's language: fixed phrases and the wording of figures.

Phrases are data a reviewer can read in one place (PHRASES); figures are worded for each language
(7.9億円 / ¥790 million, 令和8年度 / FY2026), so an English answer never needs the reader to know Japanese
to get the fact, while the Japanese source wording follows as evidence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from knowledge.labels import label
from knowledge.schema import Budget, BudgetKind

PHRASES: dict[str, dict[str, str]] = {
    "ja": {
        "evidence": "資料の記載:",
        "budget": "{name}の{year}{kind}は{amount}です。",
        "budget_item": "{name}の{year}は事項要求（金額の記載なし）です。",
        "other_budgets": "ほかに資料にある金額: {items}。",
        "rate": "{name}の補助率は{rate}です。",
        "period": "{name}の実施期間は{period}です。",
        "ministry": "{name}は{ministry}の事業です。",
        "ministry_agency": "{name}は{ministry}の事業で、{agency}が実施します。",
        "stages": "{name}の対象となる開発段階は{stages}です。",
        "requirements": "{name}の要件・条件として、資料には次の点があります: {items}。",
        "backer": "{startup}は、認定VC「{vc}」の出資を受けて創薬ベンチャーエコシステム強化事業の{round}に採択されています。",
        "backer_no_round": "{startup}は、認定VC「{vc}」の出資先として創薬ベンチャーエコシステム強化事業の採択一覧に載っています。",
        "round": "{name}の{round}は、{detail}です。",
        "round_missing": "資料には{last}までの日程しかなく、{asked}についての記載はありません。",
        "quoted": "{name}について、資料には「{quote}」とあります。",
        "quoted_plain": "資料には「{quote}」とあります。",
        "not_stated": "{name}について、お尋ねの点（{what}）は資料に記載がありません。",
        "not_stated_plain": "お尋ねの点は、資料の中に記載が見つかりませんでした。推測でお答えすることは控えます。",
        "known": "資料からわかるのは次の点です:",
        "unknown_thing": "「{name}」は、手元の資料（政府の5つの資料）には見当たりません。",
        "supporter": "詳しくは、MEDISOのような相談員（サポーター）にご相談ください。",
        "clarify": "どの事業についてのご質問でしょうか？事業名を添えてもう一度お尋ねください。",
        "clarify_examples": "たとえば: {names}",
        "thanks": "どういたしまして。ほかにも気になる点があれば、いつでもどうぞ。",
        "repeat": "この点は先ほどお答えしたとおりで、資料にはそれ以上の記載がありません。",
        "fit_lead": "お話の内容から、資料にある支援のうち次のものが合いそうです。",
        "fit_item": "{i}. *{name}*（{ministry}）— {reason}",
        "fit_form": "立場・開発段階・モダリティなどを伝えていただければ、より詳しくマッチングできます（「合う支援を探す」フォーム、または `/kakehashi match`）。",
        "fit_none": "お話の内容に合う支援は、手元の資料の中には見つかりませんでした。",
        "compare_lead": "{a}と{b}の違いを、資料からまとめます。",
        "compare_row": "*{name}*",
        "compare_ministry": "所管: {value}",
        "compare_budget": "予算: {value}",
        "compare_who": "対象: {value}",
        "compare_stages": "開発段階: {value}",
        "compare_support": "支援の種類: {value}",
        "compare_summary": "概要: {value}",
        "compare_side": "*{name}*: {quote}",
        "list_vcs": "資料の認定VC一覧には{count}社が載っています（{title}）。",
        "list_backers": "資料の採択一覧で{what}のスタートアップに出資している認定VCは次のとおりです。",
        "list_backers_note": "（資料が開発品のモダリティを記載している採択企業だけを数えています。）",
        "list_cdmos": "資料に載っているCDMOは{count}社です。",
        "list_programs": "資料にある{what}の事業は{count}件です。",
        "list_none": "資料の一覧には、条件に合うものが見つかりませんでした。",
        "curated_checked": "（この回答は、サポーターの{who}さんが{when}に確認したものです）",
        "sep": "、",
    },
    "en": {
        "evidence": "What the source says (in Japanese):",
        "budget": "{name}: the {year} {kind} is {amount}.",
        "budget_item": "{name}: for {year} the request is an item request with no amount stated.",
        "other_budgets": "Other figures in the sources: {items}.",
        "rate": "{name}: the subsidy rate is {rate}.",
        "period": "{name} runs {period}.",
        "ministry": "{name} is run by the {ministry}.",
        "ministry_agency": "{name} is run by the {ministry} and implemented by {agency}.",
        "stages": "{name} covers these development stages: {stages}.",
        "requirements": "{name}: the sources list these conditions: {items}.",
        "backer": "{startup} was adopted in {round} of the Drug Discovery Venture Ecosystem program with investment "
                  "from the certified VC {vc}.",
        "backer_no_round": "{startup} is in the Drug Discovery Venture Ecosystem program's adoption list, backed by "
                           "the certified VC {vc}.",
        "round": "{name}, {round}: {detail}.",
        "round_missing": "The sources give the schedule only up to {last}; there is nothing on {asked}.",
        "quoted": "On {name}, the source says:",
        "quoted_plain": "The source says:",
        "not_stated": "The sources do not state {what} for {name}.",
        "not_stated_plain": "I could not find this in the sources, so I will not guess.",
        "known": "What the sources do say:",
        "unknown_thing": "I cannot find \"{name}\" in our sources (five Japanese government decks).",
        "supporter": "For more, please talk to a human supporter (such as MEDISO's).",
        "clarify": "Which program do you mean? Please ask again with the program's name.",
        "clarify_examples": "For example: {names}",
        "thanks": "You're welcome. Ask any time if anything else comes up.",
        "repeat": "That is as I answered above; the sources say nothing more on it.",
        "fit_lead": "From what you describe, these programs in our sources look like a fit:",
        "fit_item": "{i}. *{name}* ({ministry}) — {reason}",
        "fit_form": "Tell me your role, development stage and modality for a fuller match (the \"Find support\" "
                    "form, or `/kakehashi match`).",
        "fit_none": "Nothing in our sources fits what you describe.",
        "compare_lead": "How {a} and {b} differ, from the sources:",
        "compare_row": "*{name}*",
        "compare_ministry": "Ministry: {value}",
        "compare_budget": "Budget: {value}",
        "compare_who": "Who: {value}",
        "compare_stages": "Stages: {value}",
        "compare_support": "Kind of support: {value}",
        "compare_summary": "In short: {value}",
        "compare_side": "*{name}*: {quote}",
        "list_vcs": "The certified-VC list in the sources has {count} VCs ({title}).",
        "list_backers": "Certified VCs that backed {what} startups in the adoption lists:",
        "list_backers_note": "(Only adopted startups whose modality the sources state are counted.)",
        "list_cdmos": "The sources list {count} CDMOs.",
        "list_programs": "The sources have {count} {what} programs.",
        "list_none": "Nothing in the lists matches that.",
        "curated_checked": "(Checked by {who}, a supporter, on {when}.)",
        "curated_japanese_only": "(A supporter wrote this answer in Japanese; there is no English version yet.)",
        "sep": ", ",
    },
}

_BUDGET_KIND = {
    "ja": {BudgetKind.REQUEST: "概算要求額", BudgetKind.INITIAL: "当初予算額", BudgetKind.SUPPLEMENTARY: "補正予算額",
           BudgetKind.FUND_TOTAL: "基金総額", BudgetKind.TOTAL: "総額", BudgetKind.ITEM_REQUEST: "事項要求"},
    "en": {BudgetKind.REQUEST: "budget request", BudgetKind.INITIAL: "initial budget",
           BudgetKind.SUPPLEMENTARY: "supplementary budget", BudgetKind.FUND_TOTAL: "fund total",
           BudgetKind.TOTAL: "total", BudgetKind.ITEM_REQUEST: "item request"},
}


def phrase(language: str, key: str, **values: object) -> str:
    return PHRASES[language][key].format(**values)


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
    return f"令和{year - 2018}年度" if language == "ja" and year >= 2019 else (
        f"{year}年度" if language == "ja" else f"FY{year}")


def budget_sentence(name: str, budget: Budget, language: str) -> str:
    year = fiscal_year(budget.fiscal_year, language)
    if budget.kind is BudgetKind.ITEM_REQUEST or budget.amount_oku_yen is None:
        return phrase(language, "budget_item", name=name, year=year)
    return phrase(language, "budget", name=name, year=year, kind=_BUDGET_KIND[language][budget.kind],
                  amount=amount(budget.amount_oku_yen, language))


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


_ENGLISH_WORDS = (("一部事業は", "some parts at "), ("で実施", ""), ("定額", "fixed amount"), ("以内", " or less"),
                  ("研究期間", "research period"), ("事業実施期間", "implementation period"), ("一部", "partly "),
                  ("半額", "half"), ("以上", " or more"))
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
        value = re.sub(r"(\d{4})\s*年\s*(\d{1,2})\s*月", lambda m: dt.date(int(m.group(1)), int(m.group(2)), 1)
                       .strftime("%B %Y"), value)
        value = re.sub(r"(\d+)\s*[年月日件社名人]", r"\1", value)
        if re.search(r"\d", value) and re.fullmatch(r"[\x00-\x7f–¥ ]+", value):
            values.append(value.strip())
    return list(dict.fromkeys(values))[:3]


def join(values: list[str], language: str) -> str:
    return PHRASES[language]["sep"].join(values)


def enum_labels(field: str, values: Sequence[object], language: str) -> str:
    return join([label(field, str(getattr(v, "value", v)), "ja" if language == "ja" else "en") for v in values],
                language)
