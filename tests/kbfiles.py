"""Record files a staff member might write, for the knowledge-editing tests. The quotes stand verbatim in
the seed deck 001 (in the small knowledge dir), as every record's sources must."""

from __future__ import annotations

import hashlib
from pathlib import Path

DOC = "001_e20f596e76c29b16.txt"
QUOTE = "医療系ベンチャー向けに相談支援や製薬企業や投資家とのネットワーキングの場を提供。"
NEW_ID = "mhlw-hoshizora-souyaku-kasoku"
NEW_NAME = "ほしぞら創薬加速パートナーシップ事業"


def program_yaml(
    *,
    record_id: str = NEW_ID,
    name: str = NEW_NAME,
    summary: str = "希少疾患の核酸医薬に取り組む創業3年以内のスタートアップに、ほしぞら基金から非臨床試験費用を"
    "最大2億円まで補助する。",
    as_of: str = "2026-04-01",
    quote: str = QUOTE,
) -> str:
    return f"""# {name}
id: {record_id}
kind: program
name_ja: {name}
name_en: Hoshizora Drug Discovery Acceleration Partnership
ministry: MHLW
summary_ja: {summary}
eligible: [startup]
stages: [non_clinical]
modalities: [nucleic_acid]
disease_areas: [rare]
support: [non_dilutive_funding]
as_of: {as_of}
sources:
  - document: {DOC}
    quote: {quote}
"""


def tree_digest(root: Path) -> str:
    """Every file's path and bytes under root, so "nothing changed" is checked, not assumed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".kakehashi.lock"):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


ANSWER_ID = "mediso-soudan-muryou"
ANSWER_QUOTE = "研究開発から上市に至るまでの各段階で生じた課題等に総合的な支援を行うための事業。"
ANSWER_TEXT_JA = (
    "MEDISOへの相談は無料です。MEDISOの事務局に問い合わせれば、登録されたサポーターが課題に応じて対応します。"
)
ANSWER_TEXT_EN = (
    "Consulting MEDISO is free of charge. Contact the MEDISO office and a registered supporter takes up your question."
)


def answer_yaml(
    *,
    answer_id: str = ANSWER_ID,
    questions: tuple[str, ...] = ("MEDISOへの相談は無料ですか？",),
    answer_ja: str = ANSWER_TEXT_JA,
    answer_en: str | None = ANSWER_TEXT_EN,
    as_of: str = "2026-11-20",
    author: str = "佐藤 花子",
    record: str | None = None,
) -> str:
    """A curated answer as a supporter writes it: a document passage (and a record, if given) as its sources."""
    phrasings = "\n".join(f"  - {q}" for q in questions)
    english = f"answer_en: {answer_en}\n" if answer_en else ""
    cites_record = f"  - record: {record}\n" if record else ""
    return f"""id: {answer_id}
kind: answer
questions:
{phrasings}
answer_ja: {answer_ja}
{english}author: {author}
as_of: {as_of}
sources:
{cites_record}  - document: {DOC}
    quote: {ANSWER_QUOTE}
"""
