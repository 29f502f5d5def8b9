"""The knowledge base: the seed records load, every fact is traceable, bad files are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import SettingsError, load_settings
from knowledge import SEED_KNOWLEDGE_DIR
from knowledge.errors import RecordError
from knowledge.loader import KnowledgeBase, load_knowledge
from knowledge.normalize import squash

EXAMPLE = SEED_KNOWLEDGE_DIR / "programs" / "mhlw-souyaku-kiban-kyouka.yaml"


def test_seed_knowledge_covers_what_the_decks_name(seed_kb: KnowledgeBase) -> None:
    # The ecosystem overview alone numbers 32 measures; the budget deck adds more.
    assert len(seed_kb.programs) >= 40
    names = " ".join(p.name_ja for p in seed_kb.programs)
    for expected in (
        "創薬ベンチャーエコシステム強化事業",
        "橋渡し研究",
        "創薬人材クロスアポイントメント推進事業",
        "再生・細胞医療・遺伝子治療製造設備投資支援事業",
        "ストックオプション税制",
    ):
        assert expected in names, expected
    # Two versions of the certified list (30 and 28 firms) reconciled into one set.
    assert len(seed_kb.vcs) == 30
    in_both = [v for v in seed_kb.vcs if len({c.list_title for c in v.certified_in}) == 2]
    assert len(in_both) == 28
    assert len(seed_kb.cdmos) >= 4
    assert len(seed_kb.documents) == 5


def test_every_cited_passage_stands_in_its_document(seed_kb: KnowledgeBase) -> None:
    documents = {d.meta.file: squash(d.text) for d in seed_kb.documents}
    quotes = 0
    for record in seed_kb.records:
        sources = list(record.sources)
        sources += [s for inv in getattr(record, "investments", []) for s in inv.sources]
        for source in sources:
            assert squash(source.quote) in documents[source.document], (record.id, source.quote)
            quotes += 1
    assert quotes > len(seed_kb.records)


def test_vc_investments_name_the_backed_startups(seed_kb: KnowledgeBase) -> None:
    backed = {inv.startup for vc in seed_kb.vcs for inv in vc.investments}
    assert any("トレジェム" in s for s in backed)
    rounds = {inv.round for vc in seed_kb.vcs for inv in vc.investments}
    assert {1, 8} <= rounds


def _copy_kb(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(SEED_KNOWLEDGE_DIR / "documents", root / "documents")
    for folder in ("programs", "vcs", "cdmos"):
        (root / folder).mkdir()
    shutil.copy(EXAMPLE, root / "programs")
    return root


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    path = root / "programs" / EXAMPLE.name
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[5] = "ministry: [MHLW"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(RecordError) as caught:
        load_knowledge(root)
    message = str(caught.value)
    assert str(path) in message and "invalid YAML" in message
    assert caught.value.line is not None and caught.value.line >= 6


def test_invalid_field_names_record_field_and_line(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    path = root / "programs" / EXAMPLE.name
    text = path.read_text(encoding="utf-8").replace("eligible: [academia, startup]", "eligible: [academia, astronauts]")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecordError) as caught:
        load_knowledge(root)
    error = caught.value
    assert error.record_id == "mhlw-souyaku-kiban-kyouka"
    assert error.field == "eligible[1]"
    assert error.line == text.splitlines().index("eligible: [academia, astronauts]") + 1
    assert "mhlw-souyaku-kiban-kyouka" in str(error) and "eligible[1]" in str(error)


def test_unknown_field_and_missing_budget_amount_are_refused(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    path = root / "programs" / EXAMPLE.name
    path.write_text(path.read_text(encoding="utf-8") + "focus_area: invented\n", encoding="utf-8")
    with pytest.raises(RecordError, match="focus_area"):
        load_knowledge(root)
    path.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("amount_oku_yen: 9.2", "amount_oku_yen: null"), encoding="utf-8"
    )
    with pytest.raises(RecordError) as caught:
        load_knowledge(root)
    assert caught.value.field == "budgets[0]"


def test_a_quote_that_is_not_in_the_document_is_refused(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    path = root / "programs" / EXAMPLE.name
    path.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(
            "令和8年度概算要求額 9.2億円（9.3億円）\n  - document", "令和8年度概算要求額 99億円\n  - document", 1
        ),
        encoding="utf-8",
    )
    with pytest.raises(RecordError, match="quote not found") as caught:
        load_knowledge(root)
    assert caught.value.field == "sources[0].quote"


def test_duplicate_ids_and_misnamed_files_are_refused(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    shutil.copy(EXAMPLE, root / "programs" / "another-name.yaml")
    with pytest.raises(RecordError, match=r"duplicate id|file name must be"):
        load_knowledge(root)


def test_missing_knowledge_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="KAKEHASHI_KNOWLEDGE_DIR"):
        load_knowledge(tmp_path / "nowhere")


def test_malformed_settings_stop_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAKEHASHI_TOP_K", "many")
    with pytest.raises(SettingsError, match="KAKEHASHI_TOP_K"):
        load_settings()
    monkeypatch.delenv("KAKEHASHI_TOP_K")
    monkeypatch.setenv("KAKEHASHI_EMBEDDING_BACKEND", "word2vec")
    with pytest.raises(SettingsError, match="KAKEHASHI_EMBEDDING_BACKEND"):
        load_settings()


# --- stated vs inferred -----------------------------------------------------------------------------


def test_every_limiting_value_says_whether_the_decks_state_it(seed_kb: KnowledgeBase) -> None:
    stated = inferred = 0
    for program in seed_kb.programs:
        for field_name in ("eligible", "stages", "modalities", "disease_areas"):
            for value in getattr(program, field_name):
                if str(value) == "any":
                    continue
                entry = program.basis.get(field_name, {}).get(str(value))
                assert entry is not None, f"{program.id}: {field_name}.{value} has no basis"
                if entry == "inferred":
                    inferred += 1
                else:
                    stated += 1
    assert stated >= 50 and inferred >= 50  # the decks leave much to reading; both kinds are recorded


def test_audit_examples_are_inferred_not_stated(seed_kb: KnowledgeBase) -> None:
    smart_bio = seed_kb.get("mext-smart-bio-souyaku")
    assert not smart_bio.stated("modalities")  # type: ignore[union-attr]
    pmda = seed_kb.get("pmda-soudan-tesuuryou-mushouka")
    assert not pmda.stated("stages") and not pmda.stated("eligible")  # type: ignore[union-attr]
    riken = seed_kb.get("mext-sedai-wo-tsunagu-seimei-kagaku")
    assert riken.category == "policy"  # type: ignore[union-attr]


def _program_text(name: str) -> str:
    return (SEED_KNOWLEDGE_DIR / "programs" / name).read_text(encoding="utf-8")


def test_a_basis_for_a_value_the_record_does_not_hold_is_refused(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    path = root / "programs" / EXAMPLE.name
    path.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("    academia: inferred", "    pharma: inferred", 1),
        encoding="utf-8",
    )
    with pytest.raises(RecordError, match=r"basis\.eligible names 'pharma'") as caught:
        load_knowledge(root)
    assert caught.value.record_id == "mhlw-souyaku-kiban-kyouka"


def test_a_stated_value_whose_passage_is_not_in_the_deck_is_refused(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    path = root / "programs" / EXAMPLE.name
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("    startup:\n      document:")
    quote_line = text.index("quote:", start)
    end = text.index("\n", quote_line)
    path.write_text(text[:quote_line] + 'quote: "スタートアップのみが対象と明記"' + text[end:], encoding="utf-8")
    with pytest.raises(RecordError, match="quote not found") as caught:
        load_knowledge(root)
    assert caught.value.field == "basis.eligible.startup.quote"


def test_english_requirements_must_pair_with_the_japanese(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    source = SEED_KNOWLEDGE_DIR / "programs" / "mext-smart-bio-souyaku.yaml"
    text = source.read_text(encoding="utf-8")
    start = text.index("requirements_en:")
    first = text.index("\n  - ", start)
    second = text.index("\n  - ", first + 1)
    (root / "programs" / source.name).write_text(text[:first] + text[second:], encoding="utf-8")
    with pytest.raises(RecordError, match="requirements_en has 2 entries but requirements has 3"):
        load_knowledge(root)


def test_a_discontinued_adoption_must_cite_its_passage(tmp_path: Path) -> None:
    root = _copy_kb(tmp_path)
    source = SEED_KNOWLEDGE_DIR / "vcs" / "vc-remiges-ventures.yaml"
    text = source.read_text(encoding="utf-8")
    assert "subsidy_ended: true" in text
    text = text.replace(
        "  - document: 000_766c4c58fa799f87.txt\n    quote: 株式会社Immunohelix ※補助事業廃止 (Remiges Ventures)\n",
        "",
        1,
    )
    (root / "vcs" / source.name).write_text(text, encoding="utf-8")
    with pytest.raises(RecordError, match="補助事業廃止") as caught:
        load_knowledge(root)
    assert caught.value.field == "investments[0].subsidy_ended"


def test_audit_record_fixes(seed_kb: KnowledgeBase) -> None:
    aimgain = seed_kb.get("amed-aimgain")
    assert aimgain.ministry == "other" and aimgain.agency == "AMED"  # type: ignore[union-attr]
    assert seed_kb.get("meti-kenkyu-kaihatsu-zeisei").ministry == "other"  # type: ignore[union-attr]
    assert "創薬力向上のための官民協議会ワーキンググループ" not in seed_kb.get("mhlw-kanmin-kyougikai").aliases
    assert seed_kb.get("meti-souyaku-kiban-gijutsu-kaihatsu").subsidy_rate == "定額（10/10）"  # type: ignore[union-attr]
    assert "2倍" in (seed_kb.get("meti-souyaku-venture-ecosystem").subsidy_rate or "")  # type: ignore[union-attr]
    cicle = seed_kb.get("cao-cicle")
    assert "目標達成8" in "".join(cicle.summary_ja.split()) and "中止22" in "".join(cicle.summary_ja.split())  # type: ignore[union-attr]
    assert any("第７回" in r for r in cicle.requirements)  # type: ignore[union-attr]
    medic = seed_kb.get("other-medic")
    assert "MEDIC" in medic.aliases and medic.sources[0].document.startswith("001_")
    projects = [p for p in seed_kb.programs if p.id.startswith("amed-pj")]
    assert len(projects) == 8 and all(p.category == "policy" for p in projects)
