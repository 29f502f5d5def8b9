"""Matchmaking over the real seed knowledge base and index: eligibility, reasons, citations, the JSON contract."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from bot import cli_match
from core.settings import Settings
from knowledge.loader import KnowledgeBase
from knowledge.normalize import squash
from knowledge.schema import CDMO, VC, Applicant, DiseaseArea, Modality, Program, ProgramCategory, Stage, Support
from retrieval.index import SearchIndex
from retrieval.match import Limits, Matcher, MatchResult, Recommendation
from retrieval.profile import Destination, Profile

REPO = Path(__file__).resolve().parents[1]
_MARKERS = re.compile(r" \[(\d+(?:, \d+)*)\]$")

CELL_STARTUP = (
    "iPS細胞由来の細胞治療を開発しているスタートアップです。非臨床段階で、米国で治験をしたい。"
    "製造委託先を探していて、認定VCからの出資も受けたい。"
)


@pytest.fixture(scope="module")
def matcher(seed_kb: KnowledgeBase, seed_index: SearchIndex) -> Matcher:
    return Matcher(kb=seed_kb, index=seed_index)


def _record_quotes(kb: KnowledgeBase, rec: Recommendation) -> set[tuple[str, str]]:
    record = kb.get(rec.id)
    sources = list(record.sources)
    if isinstance(record, VC):
        sources += [s for inv in record.investments for s in inv.sources]
    if isinstance(record, Program):
        sources += [s for entries in record.basis.values() for s in entries.values() if not isinstance(s, str)]
    return {(s.document, s.quote) for s in sources}


def _assert_explained(kb: KnowledgeBase, rec: Recommendation) -> None:
    assert rec.reasons, f"{rec.id} has no reason"
    quotes = _record_quotes(kb, rec)
    documents = {d.meta.file: squash(d.text) for d in kb.documents}
    for reason in rec.reasons:
        markers = _MARKERS.search(reason)
        assert markers, f"{rec.id}: reason without a citation: {reason}"
        for number in markers.group(1).split(", "):
            assert 1 <= int(number) <= len(rec.citations)
    titles = {d.meta.file: d.meta.title for d in kb.documents}
    for citation in rec.citations:
        assert (citation.document, citation.text) in quotes, f"{rec.id} cites a passage the record does not quote"
        assert squash(citation.text) in documents[citation.document]
        # Founders see the deck's title and date, never the seed file name or a record id.
        assert citation.source.startswith(titles[citation.document])
        assert ".txt" not in citation.source and rec.id not in citation.source


def test_json_contract(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    result = matcher.match(CELL_STARTUP, limits=Limits())
    payload = json.loads(json.dumps(result.to_json(), ensure_ascii=False))
    assert {"profile", "recommendations", "nothing_fits", "referral", "notes"} <= set(payload)
    assert payload["nothing_fits"] is False and payload["referral"]["id"] == "mhlw-mediso"
    assert payload["profile"]["modalities"] == ["cell_therapy"]
    assert payload["profile"]["free_text"] == CELL_STARTUP
    kinds = [r["kind"] for r in payload["recommendations"]]
    assert kinds == sorted(kinds, key=["program", "vc", "cdmo"].index)  # grouped by kind
    for kind, least in (("program", 5), ("vc", 1), ("cdmo", 3)):
        recs = [r for r in payload["recommendations"] if r["kind"] == kind]
        available = {"program": len(seed_kb.programs), "vc": len(seed_kb.vcs), "cdmo": len(seed_kb.cdmos)}[kind]
        assert len(recs) >= min(least, available), kind
        scores = [r["score"] for r in recs]
        assert scores == sorted(scores, reverse=True), f"{kind} not in rank order"
    for rec in payload["recommendations"]:
        assert {"kind", "id", "name", "score", "reasons", "citations", "summary", "fit"} <= set(rec)
        assert isinstance(rec["score"], float) and rec["reasons"] and rec["citations"]
        assert all(set(c) == {"source", "text"} for c in rec["citations"])
        assert rec["name"] == seed_kb.get(rec["id"]).title


def test_every_recommendation_has_reasons_with_its_own_citations(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    texts = [
        CELL_STARTUP,
        "がんの新しい治療標的を見つけた大学の研究室。基礎研究を応用研究に進めたい。",
        "We are a pharmaceutical company planning a biosimilar manufacturing plant in Japan and want subsidies.",
        "Academic lab developing a diagnostic for dementia; we want to partner with a company.",
    ]
    for text in texts:
        result = matcher.match(text)
        assert result.recommendations, text
        for rec in result.recommendations:
            _assert_explained(seed_kb, rec)


def test_hard_eligibility(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    """A limit the decks state excludes; one a curator inferred only ranks, and the reason says so."""
    profile = Profile(
        who=[Applicant.ACADEMIA],
        stages=[Stage.BASIC],
        modalities=[Modality.ANTIBODY],
        free_text="抗体の基礎研究をしている大学の研究室",
    )
    result = matcher.match_profile(profile, limits=Limits(program=80))
    recs = result.of_kind("program")
    assert recs
    wanted = {"eligible": "academia", "stages": "basic", "modalities": "antibody"}
    for rec in recs:
        program = seed_kb.get(rec.id)
        assert isinstance(program, Program)
        assert program.category is not ProgramCategory.POLICY and program.status == "active"
        for field_name, value in wanted.items():
            offered = {str(v) for v in getattr(program, field_name)}
            if not offered or "any" in offered or value in offered:
                continue
            assert not program.restriction_stated(field_name), f"{program.id}: a stated {field_name} limit let through"
            assert any("資料に明記はありません" in r for r in rec.reasons), f"{program.id}: inferred mismatch unsaid"
    # Programs the decks state are for startups only exist in the seeds, and none slipped through.
    stated_startup_only = [
        p.id for p in seed_kb.programs if p.eligible == [Applicant.STARTUP] and p.restriction_stated("eligible")
    ]
    assert stated_startup_only and not {r.id for r in recs} & set(stated_startup_only)


def test_no_inferred_value_excludes_a_program(seed_kb: KnowledgeBase) -> None:
    """For every inferred eligibility, stage, modality or disease limit in the seeds, a profile outside it alone
    is still eligible; with the same limit stated, the program is excluded."""
    enums: dict[str, list[StrEnum]] = {
        "eligible": [a for a in Applicant if a is not Applicant.ANY],
        "stages": list(Stage),
        "modalities": [m for m in Modality if m is not Modality.ANY],
        "disease_areas": [d for d in DiseaseArea if d is not DiseaseArea.ANY],
    }
    profile_field = {
        "eligible": "who",
        "stages": "stages",
        "modalities": "modalities",
        "disease_areas": "disease_areas",
    }
    checked = 0
    for program in seed_kb.programs:
        if program.category is ProgramCategory.POLICY or set(program.support) <= {Support.POLICY}:
            continue
        for field_name, values in enums.items():
            offered = {str(v) for v in getattr(program, field_name)}
            if not offered or "any" in offered or program.restriction_stated(field_name):
                continue
            outside = next(v for v in values if str(v) not in offered)
            limit: dict[str, Any] = {profile_field[field_name]: [outside]}
            profile = Profile(**limit, free_text="x")
            assert Matcher.program_eligible(profile, program), (program.id, field_name, outside)
            quote = program.sources[0]
            stated = program.model_copy(
                update={"basis": {**program.basis, field_name: {str(v): quote for v in getattr(program, field_name)}}}
            )
            assert not Matcher.program_eligible(profile, stated), (program.id, field_name)
            checked += 1
    assert checked >= 20  # the seeds carry many curator readings; each one was tried


def test_retired_records_are_never_recommended(seed_kb: KnowledgeBase, seed_index: SearchIndex) -> None:
    text = "Treg細胞を使った細胞医薬を開発中のベンチャー。出資してくれるVCを探している。"
    before = Matcher(kb=seed_kb, index=seed_index).match(text)
    top_program, top_vc = before.of_kind("program")[0].id, before.of_kind("vc")[0].id
    retire = {top_program, top_vc}
    kb = KnowledgeBase(
        root=seed_kb.root,
        programs=[p.model_copy(update={"status": "retired"}) if p.id in retire else p for p in seed_kb.programs],
        vcs=[v.model_copy(update={"status": "retired"}) if v.id in retire else v for v in seed_kb.vcs],
        cdmos=list(seed_kb.cdmos),
        documents=list(seed_kb.documents),
    )
    after = Matcher(kb=kb, index=seed_index).match(text)
    assert not retire & {r.id for r in after.recommendations}
    assert after.of_kind("program")  # the rest still match


def test_specific_fit_ranks_first(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    result = matcher.match("バイオシミラーの国内製造工場を新設したい製薬企業です。設備投資の補助金を探しています。")
    top = seed_kb.get(result.of_kind("program")[0].id)
    assert isinstance(top, Program)
    assert Modality.BIOSIMILAR in top.modalities and Applicant.PHARMA in top.eligible
    assert any("バイオシミラー" in r for r in result.of_kind("program")[0].reasons)
    # The seeds list no CDMO for biosimilars: say so rather than recommend a cell-therapy CDMO.
    assert not result.of_kind("cdmo")
    assert any("CDMO" in note for note in result.notes)


def test_vc_reasons_cite_only_investment_evidence(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    evidence = [(vc, inv) for vc in seed_kb.vcs for inv in vc.investments if inv.modalities]
    assert evidence, "the seeds record what some backed startups develop"
    _, investment = evidence[0]
    modality = investment.modalities[0]
    result = matcher.match_profile(
        Profile(
            who=[Applicant.STARTUP],
            modalities=[modality],
            needs=[Support.INVESTMENT],
            free_text=investment.develops or "",
        )
    )
    vcs = result.of_kind("vc")
    assert len(vcs) == min(5, len(seed_kb.vcs))
    backers = {v.id for v in seed_kb.vcs if any(modality in i.modalities for i in v.investments)}
    assert vcs[0].id in backers  # evidence of fit ranks above certification alone
    for rec in vcs:
        record = seed_kb.get(rec.id)
        assert isinstance(record, VC)
        _assert_explained(seed_kb, rec)
        own = {(s.document, s.quote) for s in record.sources}
        invested = {(s.document, s.quote) for i in record.investments for s in i.sources}
        assert {(c.document, c.text) for c in rec.citations} <= own | invested
        assert any("認定VC" in r for r in rec.reasons)
        # A VC is never said to fit a field its portfolio does not show.
        shown = {m for i in record.investments for m in i.modalities}
        if modality not in shown:
            assert not any("一致" in r and "出資実績" in r for r in rec.reasons)
            assert any("記載はない" in r for r in rec.reasons)


def test_no_investment_need_and_no_evidence_means_no_vcs(matcher: Matcher) -> None:
    result = matcher.match("低分子の非臨床試験を進めたいスタートアップで、PMDAに薬事相談をしたい。")
    assert result.profile.needs and Support.INVESTMENT not in result.profile.needs
    shown = result.of_kind("vc")
    assert all(any("出資実績" in r and "一致" in r for r in rec.reasons) for rec in shown)


def test_manufacturing_gets_cdmos_by_modality_and_region(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    result = matcher.match_profile(
        Profile(
            who=[Applicant.STARTUP],
            modalities=[Modality.CELL_THERAPY],
            needs=[Support.MANUFACTURING],
            destinations=[Destination.US],
            free_text="cell therapy startup needs a US CDMO",
        )
    )
    cdmos = result.of_kind("cdmo")
    able = [c for c in seed_kb.cdmos if Modality.CELL_THERAPY in c.modalities]
    assert len(cdmos) == min(3, len(able))
    for rec in cdmos:
        cdmo = seed_kb.get(rec.id)
        assert isinstance(cdmo, CDMO) and Modality.CELL_THERAPY in cdmo.modalities
        _assert_explained(seed_kb, rec)
    us_sites = {c.id for c in able if any(f.country == "US" for f in c.facilities)}
    if us_sites:
        assert cdmos[0].id in us_sites
        assert any("US" in r for r in cdmos[0].reasons if "facilities" in r)


def test_closed_rounds_are_a_caveat(seed_kb: KnowledgeBase, seed_index: SearchIndex) -> None:
    with_rounds = [p for p in seed_kb.programs if p.rounds and all(r.closes for r in p.rounds)]
    assert with_rounds
    program = with_rounds[0]
    last = max(r.closes for r in program.rounds if r.closes)
    profile = Profile(
        who=[program.eligible[0]] if program.eligible[0] is not Applicant.ANY else [],
        stages=list(program.stages[:1]),
        needs=list(program.support[:1]),
        free_text=program.summary_ja,
    )

    def reasons(today: dt.date) -> list[str]:
        result = Matcher(kb=seed_kb, index=seed_index, today=today).match_profile(profile, limits=Limits(program=80))
        return next(r.reasons for r in result.of_kind("program") if r.id == program.id)

    assert any("締切済み" in r for r in reasons(last + dt.timedelta(days=1)))
    assert not any("締切済み" in r for r in reasons(last - dt.timedelta(days=1)))


def test_requirements_and_subsidy_rates_are_caveats(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    result = matcher.match("遺伝子治療のウイルスベクターの製造技術を開発したいベンチャー")
    for rec in result.of_kind("program"):
        program = seed_kb.get(rec.id)
        assert isinstance(program, Program)
        for requirement in program.requirements:
            assert any(requirement in r for r in rec.reasons)
        if program.subsidy_rate:
            assert any(program.subsidy_rate in r for r in rec.reasons)


def test_english_profile_gets_english_reasons(matcher: Matcher) -> None:
    result = matcher.match(
        "We are a startup developing an antibody for cancer at the preclinical stage and "
        "need investment from venture capital."
    )
    assert result.language == "en"
    assert result.of_kind("program") and result.of_kind("vc")
    assert all(r.reasons[0].startswith("Eligible") for r in result.of_kind("program"))
    assert any("AMED-certified VC" in r for r in result.of_kind("vc")[0].reasons)


def test_nothing_fits_says_so_and_suggests_a_supporter(matcher: Matcher, seed_kb: KnowledgeBase) -> None:
    unreadable = matcher.match("ペットフードの新商品を企画している会社です。")
    assert unreadable.nothing_fits and unreadable.to_json()["recommendations"] == []
    assert unreadable.out_of_scope and any("サポーター" in note for note in unreadable.notes)

    # A profile that no program admits once every limit is stated, found in the seeds rather than assumed.
    def all_stated(program: Program) -> Program:
        basis = {
            f: {str(v): program.sources[0] for v in getattr(program, f) if str(v) != "any"}
            for f in ("eligible", "stages", "modalities", "disease_areas")
        }
        return program.model_copy(update={"basis": basis})

    strict = [all_stated(p) for p in seed_kb.programs]
    combinations = (
        Profile(who=[who], stages=[stage], modalities=[modality], disease_areas=[disease], free_text="合うものがない")
        for who in Applicant
        if who is not Applicant.ANY
        for stage in Stage
        for modality in Modality
        if modality is not Modality.ANY
        for disease in DiseaseArea
        if disease is not DiseaseArea.ANY
    )
    profile = next(p for p in combinations if not any(Matcher.program_eligible(p, x) for x in strict))
    kb = KnowledgeBase(
        root=seed_kb.root,
        programs=strict,
        vcs=list(seed_kb.vcs),
        cdmos=list(seed_kb.cdmos),
        documents=list(seed_kb.documents),
    )
    result = Matcher(kb=kb, index=matcher.index).match_profile(profile)
    assert not result.of_kind("program") and result.no_program_fits and not result.out_of_scope
    assert any("見つかりませんでした" in note for note in result.notes)
    assert any("MEDISO" in note for note in result.notes)
    assert result.referral is not None and result.referral.id == "mhlw-mediso" and result.referral.citations


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kakehashi")
    cli_match.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_match_command_json_from_stdin(
    seed_settings: Settings,
    seed_index: SearchIndex,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _parser().parse_args(["match", "--json", "-"])
    stdin = f"{CELL_STARTUP}\n\nOur startup wants to hire through a cross-appointment.\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert args.func(args, seed_settings) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    assert lines[0]["profile"]["free_text"] == CELL_STARTUP
    assert lines[1]["profile"]["needs"] == ["talent"]


def test_match_command_for_a_person(
    seed_settings: Settings, seed_index: SearchIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["match", CELL_STARTUP])
    assert args.func(args, seed_settings) == 0
    out = capsys.readouterr().out
    assert out.index("【理解したプロフィール】") < out.index("■ 支援策") < out.index("■ 認定VC") < out.index("■ CDMO")
    assert "出典:" in out and "[1]" in out


def test_format_match_nothing_fits() -> None:
    result = MatchResult(
        profile=Profile(free_text="hello"),
        language="en",
        recommendations=[],
        notes=["I found nothing.", "Please consult MEDISO."],
    )
    out = cli_match.format_match(result)
    assert out.startswith("Profile as understood:") and "Please consult MEDISO." in out
    assert "Support programs" not in out


def test_eval_match_prints_hit_rate_and_latency(
    seed_settings: Settings, seed_index: SearchIndex, seed_kb: KnowledgeBase, tmp_path: Path
) -> None:
    # A development row built from a real record: a profile written from its own fields.
    program = next(p for p in seed_kb.programs if p.id.startswith("mhlw-bio-kouzokuhin"))
    row = {"id": "t1", "profile": "バイオシミラーの製造施設を整備したい製薬企業", "programs_any": [program.name_ja]}
    (tmp_path / "dev_match.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    out = io.StringIO()
    result = cli_match.eval_match(settings=seed_settings, eval_dir=tmp_path, index=seed_index, out=out)
    assert result["profiles"] == 1 and result["program_in_top5"] == 1.0
    assert "wanted program in top 5: 1.000" in out.getvalue()
    assert "p50" in out.getvalue() and result["p50_ms"] > 0


def test_kakehashi_match_subprocess(
    seed_settings: Settings, seed_index: SearchIndex, seed_data_for_subprocesses: Path
) -> None:
    from bot.cli import build_parser

    choices = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    if "match" not in choices:
        pytest.skip("bot/cli.py does not register `match` yet")
    env = {
        "KAKEHASHI_DATA_DIR": str(seed_data_for_subprocesses),
        "KAKEHASHI_KNOWLEDGE_DIR": str(seed_settings.storage.knowledge_dir),
        "ANONYMIZED_TELEMETRY": "False",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "match", "--json", CELL_STARTUP],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["recommendations"]
