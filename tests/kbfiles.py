"""Record files a staff member might write, for the knowledge-editing tests. The quotes stand verbatim in
the seed deck 001 (in the small knowledge dir), as every record's sources must."""

from __future__ import annotations

import hashlib
from pathlib import Path

DOC = "001_e20f596e76c29b16.txt"
QUOTE = "医療系ベンチャー向けに相談支援や製薬企業や投資家とのネットワーキングの場を提供。"
NEW_ID = "mhlw-hoshizora-souyaku-kasoku"
NEW_NAME = "ほしぞら創薬加速パートナーシップ事業"


def program_yaml(*, record_id: str = NEW_ID, name: str = NEW_NAME,
                 summary: str = "希少疾患の核酸医薬に取り組む創業3年以内のスタートアップに、ほしぞら基金から非臨床試験費用を"
                                "最大2億円まで補助する。", as_of: str = "2026-04-01", quote: str = QUOTE) -> str:
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
