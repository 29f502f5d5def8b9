"""Query expansion for the lexical side.

The sources are Japanese. An English question shares no characters with them,
and a Japanese question often asks in everyday words (全部で, いつ) what the slides
state in official ones (総額, 年度). Dense retrieval bridges part of that gap; these
expansions give BM25 and the answer scorer the official terms as well.
"""

from __future__ import annotations

import re

# (pattern in the NFKC-normalized, lower-cased question, terms to add)
_EXPANSIONS: tuple[tuple[str, str], ...] = (
    # everyday Japanese -> the slides' wording
    (r"全部で|合計|全体で|トータル", "総額"),
    (r"いくら|金額", "億円 予算"),
    (r"いつ", "年 月"),
    (r"誰が|だれが|どこが|どの省|所管", "所管"),
    (r"対象者|誰が使え|応募でき|申請でき", "対象"),
    # English -> Japanese
    (r"\bministr(y|ies)\b", "所管 省"),
    (r"\bprograms?\b|\bprojects?\b|\bschemes?\b", "事業"),
    (r"\bfund(s|ing)?\b", "基金 支援"),
    (r"\bbudget|\bhow much\b|\bamount\b|\bcost\b", "予算 要求額 億円"),
    (r"\bdrug discovery\b", "創薬"),
    (r"\bventures?\b|\bstart-?ups?\b", "ベンチャー スタートアップ"),
    (r"\bcertified\b", "認定"),
    (r"\bvcs?\b|\bventure capital", "VC ベンチャーキャピタル"),
    (r"\bacademi(a|c)|\buniversit(y|ies)\b", "アカデミア 大学"),
    (r"\bregenerative\b", "再生医療"),
    (r"\bcell therap", "細胞 細胞治療"),
    (r"\bgene therap", "遺伝子治療"),
    (r"\bvectors?\b", "ベクター"),
    (r"\bmanufactur", "製造"),
    (r"\bcdmos?\b|\bcmos?\b|\bcontract manufactur", "CDMO 受託製造"),
    (r"\bclinical trials?\b|\bphase\b", "臨床試験 治験"),
    (r"\bnon-?clinical\b|\bpre-?clinical\b", "非臨床"),
    (r"\bsupport\b|\bhelp", "支援"),
    (r"\bconsult", "相談"),
    (r"\bregulat|\bpmda\b", "薬事 PMDA"),
    (r"\bcancer\b|\boncology\b", "がん"),
    (r"\brare disease|\bintractable\b", "難病 希少疾病"),
    (r"\binfectious\b|\bpandemic\b", "感染症"),
    (r"\bdementia\b|\bneuro", "認知症 脳神経"),
    (r"\bbiosimilars?\b", "バイオ後続品 バイオシミラー"),
    (r"\bgenerics?\b", "後発医薬品"),
    (r"\btalent\b|\bhire\b|\bhiring\b|\bcross-?appointment", "人材 クロスアポイントメント"),
    (r"\boverseas\b|\bglobal\b|\binternational\b|\bus\b|\bunited states\b", "海外 国際 米国"),
    (r"\btax\b", "税制"),
    (r"\bsubsid(y|ies)\b|\bgrants?\b", "補助 補助率"),
    (r"\bbiobank", "バイオバンク"),
    (r"\bdiagnos", "診断薬 診断"),
    (r"\bantibod", "抗体"),
    (r"\bnucleic acid|\boligonucleotide|\bmrna\b", "核酸"),
    (r"\bsmall[- ]molecule", "低分子"),
    (r"\bmicrobiome", "マイクロバイオーム"),
    (r"\bmedical devices?\b", "医療機器"),
    (r"\bfacilit(y|ies)\b|\blab space\b|\bincubat", "施設 インキュベーション"),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), terms) for p, terms in _EXPANSIONS)

# Everyday Japanese the decks write another way: the question's word is read as the decks' word when the
# answer looks for its words in a quote (「アメリカ」 -> 米国). Patterns are NFKC text.
_SYNONYMS: tuple[tuple[str, str], ...] = (
    (r"アメリカ|米国本土", "米国"),
    (r"ヨーロッパ", "欧州"),
    (r"イギリス", "英国"),
)
_SYNONYMS_COMPILED = tuple((re.compile(p), word) for p, word in _SYNONYMS)


def in_deck_words(text: str) -> str:
    """`text` with everyday words replaced by the decks' own (for finding the question's words in a quote)."""
    for pattern, word in _SYNONYMS_COMPILED:
        text = pattern.sub(word, text)
    return text


def expansion_terms(question: str) -> str:
    """Extra terms (space separated) to add to the question for lexical matching."""
    added: list[str] = []
    for pattern, terms in _COMPILED:
        if pattern.search(question):
            added.extend(t for t in terms.split() if t not in added)
    return " ".join(added)


def expand(question: str) -> str:
    extra = expansion_terms(question)
    return f"{question} {extra}" if extra else question
