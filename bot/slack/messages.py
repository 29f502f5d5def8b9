"""What the bot says, in Japanese and English. The language is the user's: we answer in it."""

from __future__ import annotations

_TEXT: dict[str, dict[str, str]] = {
    "sources": {"ja": "出典", "en": "Sources"},
    "weak_evidence": {
        "ja": ":warning: 根拠が弱い回答です。内容を資料で確かめるか、相談員につないでください。",
        "en": ":warning: The evidence for this answer is weak. Please check the sources or talk to a supporter.",
    },
    "input_cut": {
        "ja": "（入力が長いため、最初の{limit}文字だけを読みました）",
        "en": "(Your message was long; I read only its first {limit} characters.)",
    },
    "thread_context": {
        "ja": "（このスレッドのこれまでのやり取りを踏まえて回答しています）",
        "en": "(Answered with the earlier messages in this thread as context.)",
    },
    "good": {"ja": "役に立った", "en": "Helpful"},
    "bad": {"ja": "役に立たなかった", "en": "Not helpful"},
    "handoff": {"ja": "相談員につなぐ", "en": "Talk to a supporter"},
    "match_button": {"ja": "支援制度・VC・CDMOを探す", "en": "Find programs, VCs and CDMOs"},
    "thanks_feedback": {
        "ja": "フィードバックありがとうございます。今後の改善に使わせていただきます。",
        "en": "Thank you for the feedback; we use it to improve.",
    },
    "working": {"ja": ":mag: 資料を確認しています…", "en": ":mag: Checking the sources…"},
    "working_match": {"ja": ":mag: 条件に合う支援を探しています…", "en": ":mag: Looking for support that fits…"},
    "status": {"ja": "資料を確認しています…", "en": "Checking the sources…"},
    "apology": {
        "ja": ":bow: 申し訳ありません、いまお答えできませんでした。少し時間をおいてもう一度お試しください。"
        "解決しない場合は、この参照番号を添えてお問い合わせください: `{ref}`",
        "en": ":bow: Sorry, I could not answer just now. Please try again in a moment; if it keeps happening, "
        "contact us with this reference: `{ref}`",
    },
    "no_text": {
        "ja": "ご質問をどうぞ。例: `AMEDの創薬ベンチャーエコシステム強化事業とは？`",
        "en": "Please ask a question, e.g. `What is the Drug Discovery Venture Ecosystem program?`",
    },
    "asked_by": {"ja": "<@{user}> さんの質問: {question}", "en": "<@{user}> asked: {question}"},
    "posted_to_dm": {
        "ja": "このチャンネルには投稿できないため、結果をDMでお送りしました。",
        "en": "I cannot post in this channel, so I sent the result to you by direct message.",
    },
    "handoff_done": {
        "ja": ":handshake: 相談員に引き継ぎました（受付番号 *{ref}*）。"
        "担当者が決まり次第、このスレッドでお知らせします。",
        "en": ":handshake: I passed this to a human supporter (reference *{ref}*). "
        "I will tell you in this thread when someone takes it.",
    },
    "handoff_taken": {
        "ja": ":raising_hand: 相談 *{ref}* は <@{supporter}> さんが担当します。追ってご連絡します。",
        "en": ":raising_hand: <@{supporter}> is now handling consultation *{ref}* and will get in touch.",
    },
    "handoff_resolved": {
        "ja": ":white_check_mark: 相談 *{ref}* は対応済みになりました。ほかにご質問があれば、いつでもどうぞ。",
        "en": ":white_check_mark: Consultation *{ref}* has been resolved. Ask me anything else at any time.",
    },
    "handoff_unavailable": {
        "ja": "相談窓口のチャンネルが設定されていないため、いまは相談員につなげません。",
        "en": "No supporters' channel is configured, so I cannot reach a supporter right now.",
    },
    "already_taken": {
        "ja": "この相談はすでに <@{supporter}> さんが担当しています。",
        "en": "<@{supporter}> is already handling this consultation.",
    },
    "already_resolved": {"ja": "この相談はすでに対応済みです。", "en": "This consultation is already resolved."},
    "no_matches": {
        "ja": "条件に合う支援制度・VC・CDMOが見つかりませんでした。条件を変えるか、相談員につないでください。",
        "en": "I found no program, VC or CDMO that fits. Try other conditions, or talk to a supporter.",
    },
    "greeting": {
        "ja": ":wave: こんにちは、Kakehashi です。医療・創薬スタートアップ向けの支援制度、認定VC、CDMOについて、"
        "資料に基づいて出典つきでお答えします。下の例から選ぶか、自由にご質問ください。",
        "en": ":wave: Hello, I am Kakehashi. I answer questions about support programs, certified VCs and CDMOs "
        "for healthcare and drug-discovery startups, citing the sources.",
    },
    "prompts_title": {"ja": "たとえば、こんな質問ができます", "en": "Try asking"},
}

SUGGESTED_PROMPTS_JA: list[dict[str, str]] = [
    {"title": "MEDISOとは？", "message": "MEDISOとはどのような相談窓口ですか？"},
    {"title": "創薬ベンチャー向けの補助金",
     "message": "創薬ベンチャーエコシステム強化事業の補助率と対象を教えてください。"},
    {"title": "自分に合う支援を探す",
     "message": "非臨床段階の細胞治療スタートアップです。使える支援制度やVCはありますか？"},
    {"title": "認定VCの一覧", "message": "AMEDの認定VCにはどのような会社がありますか？"},
]

EXAMPLE_QUESTIONS = [
    "MEDISOではどのような相談ができますか？",
    "創薬ベンチャーエコシステム強化事業の補助率は？",
    "再生・細胞医療・遺伝子治療の製造設備投資を支援する事業は？",
    "What does AMED's CiCLE program fund?",
]


def t(key: str, language: str, **values: object) -> str:
    """The message `key` in `language` (English when it has no Japanese), with values filled in."""
    texts = _TEXT[key]
    text = texts.get(language) or texts["en"]
    return text.format(**values) if values else text
