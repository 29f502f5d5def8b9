"""Reading a matchmaking profile from free text: the vocabulary, the schema, the LLM path and the display."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.settings import Settings
from knowledge.schema import Applicant, DiseaseArea, Modality, Stage, Support
from retrieval.answer import make_chat_model
from retrieval.errors import VocabularyError
from retrieval.profile import (
    Destination,
    Profile,
    ProfileVocabulary,
    extract_profile,
    render_profile,
)
from tests.fakellm import FakeOpenAI, completion


def test_japanese_profile_fields() -> None:
    profile = extract_profile(
        "起業前の大学研究者です。iPS細胞由来の細胞で前臨床試験を進めたい。助成金と資金調達の両方を考えています。"
    )
    assert Applicant.ACADEMIA in profile.who and profile.pre_founding
    assert profile.modalities == [Modality.CELL_THERAPY]
    assert Stage.NON_CLINICAL in profile.stages
    assert {Support.NON_DILUTIVE_FUNDING, Support.INVESTMENT} <= set(profile.needs)
    assert profile.free_text.startswith("起業前の大学研究者です。")


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("非臨床の段階です", "stages", Stage.NON_CLINICAL),
        ("前臨床の段階です", "stages", Stage.NON_CLINICAL),
        ("ウイルスベクターを作っている", "modalities", Modality.GENE_THERAPY),
        ("がんの新しい治療標的を見つけた大学の研究室", "who", Applicant.ACADEMIA),
        ("治験薬の製造を相談したい", "needs", Support.MANUFACTURING),
        ("出資を受けたい", "needs", Support.INVESTMENT),
        ("補助金を探している", "needs", Support.NON_DILUTIVE_FUNDING),
        ("感染症の診断薬を開発", "modalities", Modality.DIAGNOSTICS),
        ("感染症の診断薬を開発", "disease_areas", DiseaseArea.INFECTIOUS),
        ("企業と連携したい", "needs", Support.MATCHING),
        ("クロスアポイントメントで人を迎えたい", "needs", Support.TALENT),
        ("国際共同治験を計画", "destinations", Destination.GLOBAL),
    ],
)
def test_japanese_synonyms(text: str, field: str, value: Any) -> None:
    assert value in getattr(extract_profile(text), field)


def test_english_profile_fields() -> None:
    profile = extract_profile(
        "Our startup wants to hire an experienced pharma scientist part-time through a cross-appointment."
    )
    # The pharma scientist is who they want to hire, not who is asking.
    assert profile.who == [Applicant.STARTUP]
    assert profile.needs == [Support.TALENT]

    profile = extract_profile(
        "Preclinical AAV gene therapy for a rare pediatric disease; we plan a Phase 1/2 trial in the US."
    )
    assert {Stage.NON_CLINICAL, Stage.PHASE1, Stage.PHASE2} <= set(profile.stages)
    assert profile.modalities == [Modality.GENE_THERAPY]
    assert {DiseaseArea.RARE, DiseaseArea.PEDIATRIC} <= set(profile.disease_areas)
    assert Support.CLINICAL_TRIALS in profile.needs
    assert profile.destinations == [Destination.US]


def test_latin_terms_match_whole_words_and_case_where_it_matters() -> None:
    assert extract_profile("please help us find grants").destinations == []
    assert extract_profile("we want to enter the US with our device").destinations == [Destination.US]
    # "ip" (intellectual property) is not inside "iPS"; "ips" as a word is a cell therapy.
    ips = extract_profile("iPS cells for retinal disease")
    assert Support.IP_STRATEGY not in ips.needs and Modality.CELL_THERAPY in ips.modalities


def test_matching_is_nfkc_normalized() -> None:
    profile = extract_profile("ｉＰＳ細胞由来の製品で第Ⅰ相を準備中。ＣＤＭＯを探している")
    assert Modality.CELL_THERAPY in profile.modalities
    assert Stage.PHASE1 in profile.stages
    assert Support.MANUFACTURING in profile.needs


def test_longer_phrases_win_over_the_words_inside_them() -> None:
    spinout = extract_profile("大学発ベンチャーです")
    assert spinout.who == [Applicant.STARTUP]
    partner = extract_profile("アカデミアの研究グループで、製薬企業と連携したい")
    assert partner.who == [Applicant.ACADEMIA]  # the pharma company is the partner
    assert Support.MATCHING in partner.needs


def test_nothing_readable_is_an_empty_profile() -> None:
    profile = extract_profile("ペットフードの新商品を企画している会社です。")
    assert profile.empty
    assert profile.free_text == "ペットフードの新商品を企画している会社です。"


def test_profile_schema_rules() -> None:
    profile = Profile(
        pre_founding=True,
        who=[Applicant.ANY],
        modalities=[Modality.ANY, Modality.ANTIBODY],
        needs=[Support.POLICY, Support.TALENT, Support.TALENT],
    )
    assert profile.who == [Applicant.ACADEMIA]  # before founding means academia; `any` is not a person
    assert profile.modalities == [Modality.ANTIBODY]
    assert profile.needs == [Support.TALENT]  # a policy body is not a need; duplicates dropped
    with pytest.raises(ValueError):
        Profile.model_validate({"who": ["astronaut"]})


def test_vocabulary_is_data_loaded_once(tmp_path: Path) -> None:
    assert ProfileVocabulary.default() is ProfileVocabulary.default()
    custom = tmp_path / "vocabulary.yaml"
    custom.write_text(
        "fields:\n  modalities:\n    cell_therapy: [オルガノイド]\n"
        "phrases:\n  - terms: [オルガノイド創薬基盤]\n    needs: [research_infrastructure]\n",
        encoding="utf-8",
    )
    vocabulary = ProfileVocabulary.load(custom)
    assert extract_profile("オルガノイドの研究をしている", vocabulary=vocabulary).modalities == [Modality.CELL_THERAPY]
    phrase = extract_profile("オルガノイド創薬基盤を使いたい", vocabulary=vocabulary)
    assert phrase.needs == [Support.RESEARCH_INFRASTRUCTURE] and phrase.modalities == []  # the phrase claims its words
    assert vocabulary.terms_for("modalities", "cell_therapy") == ["オルガノイド"]
    assert ProfileVocabulary.load(custom) is vocabulary


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fields:\n  modalities:\n    telepathy: [念力]\n", "'telepathy' is not one of"),
        ("fields:\n  moods: {}\n", "unknown field 'moods'"),
        ("fields: [1, 2\n", "invalid YAML"),
        ("phrases:\n  - needs: [talent]\n", "needs `terms`"),
        ("patterns:\n  amounts: ['[0-9']\n", "patterns.amounts: invalid regular expression"),
        ("patterns:\n  moods: ['x']\n", "unknown kind 'moods'"),
        ("life_science: [医療, '']\n", "life_science: a term must be a non-empty string"),
        ("non_rd_uses: [{a: 1}]\n", "non_rd_uses: a term must be a non-empty string"),
    ],
)
def test_bad_vocabulary_is_named(text: str, message: str) -> None:
    with pytest.raises(VocabularyError, match=message):
        ProfileVocabulary.from_yaml(text)


def test_render_profile_follows_the_language() -> None:
    ja = render_profile(extract_profile("起業前の大学研究者で、抗体の非臨床試験の補助金を探している"))
    assert "起業前" in ja and "抗体・ADC" in ja and "非臨床試験" in ja and "研究開発費・補助金" in ja
    assert "疾患領域: （記載なし）" in ja
    en = render_profile(extract_profile("We are a startup developing antibodies and need investment"))
    assert "Who: startup" in en and "antibody / ADC" in en and "investment" in en
    assert "Disease area: (not stated)" in en


# --- with a chat model ----------------------------------------------------------------------------


def _chat_model(server: FakeOpenAI) -> Any:
    return make_chat_model(
        Settings(llm_model="openai:fake-model", llm_base_url=server.base_url, llm_api_key=SecretStr("sk-test"))
    )


def test_llm_structured_output_is_used_and_validated() -> None:
    answer = {
        "who": ["startup"],
        "pre_founding": False,
        "stages": ["phase2"],
        "modalities": ["nucleic_acid"],
        "disease_areas": ["rare"],
        "needs": ["clinical_trials"],
        "destinations": ["global"],
        "free_text": "something the model made up",
    }
    with FakeOpenAI(lambda body: (200, completion(json.dumps(answer)))) as server:
        text = "筋ジストロフィーのアンチセンス核酸で、海外での第2相を準備しています"
        profile = extract_profile(text, chat_model=_chat_model(server))
    # The vocabulary has no word for this disease; the model's reading is what came back.
    assert profile.disease_areas == [DiseaseArea.RARE]
    assert profile.stages == [Stage.PHASE2]
    assert profile.free_text == text  # the user's words, not the model's
    request = server.requests[0]
    assert text in json.dumps(request, ensure_ascii=False)
    assert "response_format" in request or "tools" in request  # structured output was asked for


@pytest.mark.parametrize(
    "reply",
    [
        lambda body: (500, {"error": {"message": "internal error", "type": "server_error"}}),
        lambda body: (200, completion("not json at all")),
        lambda body: (200, completion(json.dumps({"who": ["astronaut"], "needs": ["world peace"]}))),
    ],
    ids=["http-500", "not-json", "outside-the-vocabulary"],
)
def test_llm_failure_falls_back_to_the_vocabulary(reply: Any) -> None:
    with FakeOpenAI(reply) as server:
        profile = extract_profile("ウイルスベクターの製造技術を開発したいベンチャー", chat_model=_chat_model(server))
    assert profile.who == [Applicant.STARTUP]
    assert profile.modalities == [Modality.GENE_THERAPY]
    assert Support.MANUFACTURING in profile.needs


# --- the asker's situation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "who", "pre_founding", "founded"),
    [
        ("We are a university spin-out developing an siRNA drug.", [Applicant.STARTUP], False, True),
        ("We plan to spin out a company from our lab.", [Applicant.ACADEMIA], True, False),
        ("創業3年目のバイオベンチャーです。", [Applicant.STARTUP], False, True),
        ("会社は設立済みです。抗体を開発しています。", [Applicant.STARTUP], False, True),
        ("起業前の大学研究者です。", [Applicant.ACADEMIA], True, False),
        (
            "I lead BD at a pharma company and want to in-license from Japanese universities.",
            [Applicant.PHARMA],
            False,
            False,
        ),
        ("製薬会社ですが、細胞治療のCDMO事業に参入したい。", [Applicant.PHARMA, Applicant.CDMO], False, False),
        ("We are a VC and invest in biotech startups.", [Applicant.INVESTOR], False, False),
    ],
)
def test_who_is_asking_and_whether_the_company_exists(
    text: str, who: list[Applicant], pre_founding: bool, founded: bool
) -> None:
    profile = extract_profile(text)
    assert profile.who == who and profile.pre_founding is pre_founding and profile.founded is founded


def test_where_the_company_is_from_is_kept_apart_from_where_it_goes() -> None:
    profile = extract_profile("US biotech with a Japanese subsidiary; we plan a phase 1 trial in Japan.")
    assert profile.based_in == [Destination.US] and profile.destinations == [Destination.JAPAN]
    assert profile.who == [Applicant.STARTUP]
    ja = extract_profile("欧州企業の日本法人です。日本で治験をしたい。")
    assert ja.based_in == [Destination.GLOBAL] and Destination.JAPAN in ja.destinations


def test_amounts_and_timing_are_quoted_back_as_written() -> None:
    profile = extract_profile("創業2年目です。来年度中に5億円、2026年3月までに治験開始。We need $5M within 18 months.")
    assert profile.amounts == ["5億円", "$5M"]
    assert profile.timing == ["来年度中", "2026年3月まで", "within 18 months"]  # not 2年 from 創業2年目
    shown = render_profile(profile, "ja")
    assert "金額: 5億円、$5M" in shown and "時期: 来年度中" in shown


def test_life_science_and_non_rd_words() -> None:
    vocabulary = ProfileVocabulary.default()
    assert extract_profile("抗体医薬を開発しています").life_science
    assert not extract_profile("ラーメン店の2号店を出したい").life_science
    assert vocabulary.non_rd_use_terms("病院の駐車場を拡張したい") == ["駐車場"]
    assert vocabulary.non_rd_use_terms("We need funding for TV advertising") == ["advertis*"]
    assert not vocabulary.non_rd_use_terms("非臨床試験の資金がほしい")


def test_llm_profiles_get_relevance_and_figures_from_the_vocabulary() -> None:
    answer = {
        "who": ["startup"],
        "modalities": [],
        "needs": ["investment"],
        "life_science": False,
        "amounts": ["made up"],
        "free_text": "",
    }
    with FakeOpenAI(lambda body: (200, completion(json.dumps(answer)))) as server:
        profile = extract_profile("創薬スタートアップです。3億円を調達したい。", chat_model=_chat_model(server))
    assert profile.life_science and profile.amounts == ["3億円"]
