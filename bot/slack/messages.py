"""What the bot says, in Japanese and English. The language is the user's: we answer in it."""

from __future__ import annotations

_TEXT: dict[str, dict[str, str]] = {
    # the weekly gaps report (bot/slack/gapsreport.py)
    "gaps_title": {"ja": "ナレッジベースの不足（週次レポート）", "en": "Knowledge gaps (weekly report)"},
    "gaps_period": {"ja": "期間: {since} 〜 {until}（JST、過去{days}日）", "en": "Period: {since} to {until} (JST, last {days} days)"},
    "gaps_totals": {"ja": "自信のない回答 {low_confidence}・👎 {thumbs_down}・相談員へのハンドオフ {handoff}・トピック {topics}",
               "en": "low-confidence answers {low_confidence} · 👎 {thumbs_down} · hand-offs {handoff} · topics {topics}"},
    "gaps_none": {"ja": ":tada: 過去{days}日間、不足は見つかりませんでした。", "en": ":tada: No gaps in the last {days} days."},
    "gaps_questions": {"ja": "質問 {questions}件（自信なし {low_confidence}・👎 {thumbs_down}・ハンドオフ {handoff}）・最新 {latest}",
                  "en": "{questions} questions (low confidence {low_confidence} · 👎 {thumbs_down} · hand-offs "
                  "{handoff}) · latest {latest}"},
    "gaps_private_topic": {"ja": "（DMでの質問のため内容は表示しません）",
                           "en": "(asked in DMs, so not quoted here)"},
    "gaps_private_count": {"ja": "うちDMでの質問 {n}件（引用していません）", "en": "{n} of them asked in DMs (not quoted)"},
    "gaps_terms": {"ja": "キーワード: {terms}", "en": "Key terms: {terms}"},
    "gaps_reasons": {"ja": "👎の理由: {reasons}", "en": "👎 reasons: {reasons}"},
    "gaps_close": {"ja": ":books: 最も近い記載: {title}（{origin}）", "en": ":books: Closest in the knowledge base: {title} ({origin})"},
    "gaps_new": {"ja": ":new: 近い記載なし（新しいトピック）— 最も近いもの: {title}",
            "en": ":new: Nothing close: a new topic (closest: {title})"},
    "gaps_curated_served": {"ja": ":white_check_mark: サポーター確認済みの回答で答えた質問 {n}件",
                            "en": ":white_check_mark: {n} questions answered by supporter-checked answers"},
    "gaps_covered": {"ja": ":white_check_mark: 確認済みの回答で答えるようになりました:「{question}」",
                     "en": ":white_check_mark: Now answered by a checked answer: \"{question}\""},
    "gaps_uncovered": {"ja": ":pencil2: まだ確認済みの回答はありません。書いて登録すると、次からはそれで答えます。",
                       "en": ":pencil2: No checked answer yet. Write one and the desk answers with it from then on."},
    "curate_refused": {"ja": "「回答として登録」は、ナレッジを編集できるスタッフが、その相談のカード（相談員チャンネル）から使えます。",
                       "en": "Only staff who edit the knowledge can register an answer, from the consultation's card."},
    "curate_not_resolved": {"ja": "対応済みの相談だけを回答として登録できます。",
                            "en": "Only a resolved consultation can be registered as an answer."},
    "curate_exists": {"ja": "この相談の回答はすでに登録されています（{id}）。変更は `/kakehashi kb` から行えます。",
                      "en": "This consultation's answer is already registered ({id}); change it with `/kakehashi kb`."},
    "gaps_write": {"ja": "回答を書く", "en": "Write an answer"},
    "gaps_more": {"ja": "ほか {n} トピック。すべては `kakehashi report gaps` で確認できます。",
             "en": "{n} more topics: run `kakehashi report gaps` to see them all."},
    "gaps_fallback": {"ja": "ナレッジベースの不足: {topics}トピック、{items}件（過去{days}日）",
                 "en": "Knowledge gaps: {topics} topics, {items} items (last {days} days)"},
    "gaps_fallback_none": {"ja": "ナレッジベースの不足: 過去{days}日間はありませんでした",
                      "en": "Knowledge gaps: none in the last {days} days"},
    "sources": {"ja": "出典", "en": "Sources"},
    "weak_evidence": {
        "ja": ":warning: 根拠が弱い回答です。内容を資料で確かめるか、相談員につないでください。",
        "en": ":warning: The evidence for this answer is weak. Please check the sources or talk to a supporter.",
    },
    "input_cut": {
        "ja": "（入力が長いため、最初の{limit}文字だけを読みました）",
        "en": "(Your message was long; I read only its first {limit} characters.)",
    },
    "share": {"ja": "チャンネルに共有", "en": "Share in channel"},
    "shared_by": {"ja": "<@{user}> さんが共有しました · 質問: {question}", "en": "Shared by <@{user}> · Question: {question}"},
    "share_gone": {
        "ja": "この結果はもう共有できません（保存された記録が見つかりません）。もう一度お尋ねください。",
        "en": "This result can no longer be shared (its record is gone); please ask again.",
    },
    "view_sources": {"ja": "出典を見る", "en": "View sources"},
    "sources_title": {"ja": "出典", "en": "Sources"},
    "no_sources": {"ja": "この回答が引用した資料はありません。", "en": "This answer cites no source."},
    "close": {"ja": "閉じる", "en": "Close"},
    "details": {"ja": "詳細", "en": "Details"},
    "website": {"ja": "公式ページ", "en": "Official page"},
    "your_situation": {"ja": "ご状況", "en": "Your situation"},
    "search_again": {"ja": "条件を変えて探す", "en": "Search again"},
    "not_yours": {
        "ja": "この操作は、回答を受け取った方と相談員だけができます。",
        "en": "Only the person who got this answer, and the supporters, can do that.",
    },
    "unknown_command": {
        "ja": "`{word}` というコマンドはありません。{hint}",
        "en": "There is no `{word}` command. {hint}",
    },
    "did_you_mean": {"ja": "`/kakehashi {command}` のことですか？", "en": "Did you mean `/kakehashi {command}`?"},
    "empty_ask": {
        "ja": "`/kakehashi ask` のあとに質問を書いてください。例: `/kakehashi ask MEDISOではどんな相談ができますか？`",
        "en": "Write your question after `/kakehashi ask`, e.g. `/kakehashi ask What does MEDISO offer?`",
    },
    "relay_from_supporter": {"ja": "*<@{user}>（相談員）*: {text}", "en": "*<@{user}> (supporter)*: {text}"},
    "relay_from_asker": {"ja": "{ping}*<@{user}>（相談者）*: {text}", "en": "{ping}*<@{user}> (founder)*: {text}"},
    "relay_files": {"ja": "（ファイル {n} 件: 相談者のスレッドでご覧ください）", "en": "({n} file(s): see the founder's thread)"},
    "file_offer": {
        "ja": "資料をありがとうございます。ボットはファイルの中身を読んでお答えすることはできません。"
        "相談員（サポーター）に見てもらうこともできます。",
        "en": "Thank you for the file. I cannot read files to answer, but a human supporter can look at it.",
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
    "status_more": {"ja": "出典を確かめています…", "en": "Checking the quotes…"},
    "apology": {
        "ja": ":bow: 申し訳ありません、いまお答えできませんでした。少し時間をおいてもう一度お試しください。"
        "解決しない場合は、この参照番号を添えてお問い合わせください: `{ref}`",
        "en": ":bow: Sorry, I could not answer just now. Please try again in a moment; if it keeps happening, "
        "contact us with this reference: `{ref}`",
    },
    "not_saved": {
        "ja": ":warning: データベースに接続できず、保存できませんでした。少し時間をおいてもう一度お試しください"
        "（参照番号 `{ref}`）。",
        "en": ":warning: That could not be saved: the database is not reachable. Please try again in a moment "
        "(reference `{ref}`).",
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
        "ja": ":raising_hand: 相談 *{ref}* は <@{supporter}> さんが担当します。"
        "このスレッドに書いたメッセージは担当者に届き、担当者からの返信もここに届きます。",
        "en": ":raising_hand: <@{supporter}> is now handling consultation *{ref}*. What you write in this thread "
        "reaches them, and their replies arrive here.",
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
    # --- the knowledge editor (staff) ---
    "kb_refused": {
        "ja": "申し訳ありません。ナレッジ（支援制度・VC・CDMO・資料）を変更できるのは相談員（スタッフ）だけです。"
        "質問は `/kakehashi ask` やDMでいつでもどうぞ。",
        "en": "Sorry, only the desk's staff can change the knowledge base (programs, VCs, CDMOs, documents). "
        "You can still ask me anything with `/kakehashi ask` or a direct message.",
    },
    "kb_unavailable": {
        "ja": "このボットではナレッジの編集が有効になっていません。",
        "en": "Editing the knowledge base is not enabled in this bot.",
    },
    "kb_usage": {
        "ja": "使い方: {usage}（`/kakehashi kb help` で一覧）",
        "en": "Usage: {usage} (`/kakehashi kb help` lists every command)",
    },
    "kb_unknown": {"ja": ":warning: {error}", "en": ":warning: {error}"},
    "kb_nothing": {
        "ja": "変更はありません: {error}",
        "en": "Nothing changed: {error}",
    },
    "kb_failed": {
        "ja": ":warning: 変更できませんでした（何も書き込んでいません）: {error}",
        "en": ":warning: Could not make the change (nothing was written): {error}",
    },
    "kb_refreshing": {"ja": ":hourglass_flowing_sand: 検索に反映しています…", "en": ":hourglass_flowing_sand: Updating the search index…"},
    "kb_searchable": {
        "ja": ":mag: 検索に反映しました（{seconds:.1f}秒）。いまから回答とおすすめに使われます。",
        "en": ":mag: Searchable now ({seconds:.1f} s): answers and recommendations use it from now on.",
    },
    "kb_refresh_failed": {
        "ja": ":warning: 変更は保存しましたが、検索への反映に失敗しました。次の質問のときにもう一度試みます。"
        "参照番号: `{ref}`",
        "en": ":warning: The change is saved, but updating the search index failed; it is retried at the next "
        "question. Reference: `{ref}`",
    },
    "kb_not_live": {
        "ja": "変更は保存しました。このボットは自動で再読み込みしないため、`kakehashi ingest` と再起動で反映されます。",
        "en": "The change is saved. This bot does not reload by itself: run `kakehashi ingest` and restart it.",
    },
    "kb_conflict": {
        "ja": "{who}がこの記録を変更しました（変更 #{change}、{when}）。保存していません。"
        "フォームを閉じて開き直し、最新の内容に変更を加えてください。",
        "en": "{who} changed this record after you opened it (change #{change}, {when}); nothing was saved. "
        "Close the form, open it again and redo your edit on the new version.",
    },
    "kb_conflict_unknown": {
        "ja": "フォームを開いたあとに、この記録が変更されました。保存していません。フォームを開き直してください。",
        "en": "This record changed after you opened the form; nothing was saved. Please open it again.",
    },
    "kb_id_taken": {
        "ja": "このIDはすでに使われています。別のIDにするか、`/kakehashi kb edit {id}` で編集してください。",
        "en": "This id is already taken; choose another, or edit it with `/kakehashi kb edit {id}`.",
    },
    "kb_upload_refused": {
        "ja": "ファイルをありがとうございます。ただ、資料をナレッジに追加できるのは相談員（スタッフ）だけです。"
        "内容についてのご質問は、文章でどうぞ。",
        "en": "Thank you for the file. Only the desk's staff can add documents to the knowledge base; "
        "please ask your question in words.",
    },
    "kb_upload_working": {
        "ja": ":inbox_tray: `{name}` を読み込んでいます…",
        "en": ":inbox_tray: Reading `{name}`…",
    },
    "kb_upload_warning": {"ja": ":warning: 抽出時の注意: {warning}", "en": ":warning: While extracting: {warning}"},
    "kb_upload_added": {
        "ja": ":page_facing_up: 資料「{title}」を追加しました（変更 #{change}、ID `{doc_id}`、{passages} 節）。"
        "題名・府省・日付が違えば「詳細を編集」から直してください。",
        "en": ":page_facing_up: Added the document \"{title}\" (change #{change}, id `{doc_id}`, {passages} "
        "passages). If the title, ministry or date is wrong, fix it with \"Edit details\".",
    },
    "kb_upload_unreadable": {
        "ja": ":no_entry_sign: `{name}` は追加できませんでした（何も変更していません）。{why}\n> {detail}",
        "en": ":no_entry_sign: I could not add `{name}` (nothing changed). {why}\n> {detail}",
    },
    "kb_upload_same": {
        "ja": "`{name}` と同じ内容の資料がすでにあります。何も変更していません。",
        "en": "A document with the same content as `{name}` is already there; nothing changed.",
    },
    "kb_upload_too_many": {
        "ja": "一度に読み込むのは {limit} ファイルまでです。残りはもう一度アップロードしてください。",
        "en": "I read at most {limit} files at a time; please upload the rest again.",
    },
    "kb_upload_replace_ask": {
        "ja": ":warning: `{name}` の名前は既存の資料「{title}」（ID `{doc_id}`）と同じです。まだ何も変更していません。"
        "この資料の本文を置き換える場合は「置き換える」を押してください。別の資料として追加する場合は、ファイル名を変えて"
        "アップロードし直してください。",
        "en": ":warning: `{name}` has the name of the existing document \"{title}\" (id `{doc_id}`). Nothing has changed "
        "yet. Press \"Replace it\" to replace that document's text; to add it as a new document, rename the file and "
        "upload it again.",
    },
    # checks on what a payload claims (bot/slack/guards.py)
    "not_a_supporter": {
        "ja": "相談の担当・対応済みの操作は相談員だけができます。",
        "en": "Only supporters can take or resolve consultations.",
    },
    "not_your_answer": {
        "ja": "この回答はあなたの質問へのものではないため、その操作はできません。",
        "en": "That answer was not to your question, so that cannot be done with it.",
    },
    "form_not_yours": {
        "ja": "このフォームはあなたが開いたものではないため、受け付けませんでした。もう一度ボタンから開いてください。",
        "en": "This form was not opened by you, so it was not accepted. Please open it again from the button.",
    },
}

# Why an upload could not be read, by DocumentReadError.reason (the English detail follows it).
READ_FAILURE_JA = {
    "too_large": "ファイルが大きすぎます。分割するか画像を圧縮して、もう一度アップロードしてください。",
    "unsupported_type": "この形式には対応していません。PDF・Word（.docx）・Markdown・テキストをアップロードしてください。",
    "encrypted": "パスワードで保護（暗号化）されています。保護を外してからアップロードしてください。",
    "no_text": "文字が読み取れません（スキャンした画像だけのPDFなど）。文字を含むファイルか、OCRしたテキストをアップロードしてください。",
    "corrupt": "ファイルが壊れているか、拡張子と中身が一致しません。",
    "zip_bomb": "展開すると異常に大きくなるファイルのため、安全のため読み込みません。",
    "encoding": "文字コードが読み取れません。UTF-8で保存し直してアップロードしてください。",
    "download": "Slackからファイルを取得できませんでした。もう一度お試しください。",
}

SUGGESTED_PROMPTS_JA: list[dict[str, str]] = [
    {"title": "MEDISOとは？", "message": "MEDISOとはどのような相談窓口ですか？"},
    {"title": "創薬ベンチャー向けの補助金",
     "message": "創薬ベンチャーエコシステム強化事業の補助率と対象を教えてください。"},
    {"title": "自分に合う支援を探す",
     "message": "非臨床段階の細胞治療スタートアップです。使える支援制度やVCはありますか？"},
    {"title": "認定VCの一覧", "message": "AMEDの認定VCにはどのような会社がありますか？"},
]

SUGGESTED_PROMPTS_EN: list[dict[str, str]] = [
    {"title": "What is MEDISO?", "message": "What kind of consultations does MEDISO offer?"},
    {"title": "Drug-discovery venture grants",
     "message": "What does the Drug Discovery Venture Ecosystem program fund, and at what rate?"},
    {"title": "Find support that fits me",
     "message": "We are a non-clinical cell therapy startup. Which programs or VCs fit us?"},
    {"title": "Certified VCs", "message": "Which VCs are certified by AMED?"},
]


def suggested_prompts(language: str) -> list[dict[str, str]]:
    return SUGGESTED_PROMPTS_EN if language == "en" else SUGGESTED_PROMPTS_JA


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
