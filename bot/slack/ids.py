"""The action_id and callback_id values of every button and form, in one place: features link to each other's
buttons (an answer offers the hand-off, a card opens the sources) and the listeners register on these."""

from __future__ import annotations

# answers
SOURCES = "kk_sources"
DETAILS = "kk_details"
SHARE = "kk_share"
LINK = "kk_link"  # link-out buttons; Slack still sends an action, which we acknowledge
# feedback
FEEDBACK = "kk_feedback"  # Slack's feedback_buttons; the value says up:/down: and the answer
FEEDBACK_VIEW = "kk_feedback_view"
# hand-off to a supporter, and curated answers from a consultation or a gap
HANDOFF = "kk_handoff"
TAKE = "kk_take"
RESOLVE = "kk_resolve"
CURATE = "kk_curate"  # 「回答として登録」 on a resolved consultation's card (staff only)
CURATE_GAP = "kk_curate_gap"  # 「回答を書く」 on a gaps-report topic no curated answer covers (staff only)
HANDOFF_VIEW = "kk_handoff_view"
CURATE_VIEW = "kk_curate_view"
# matchmaking
OPEN_MATCH = "kk_open_match"
MATCH_VIEW = "kk_match_view"
# the knowledge editor (staff)
KB_RECORD_VIEW = "kk_kb_record_view"
KB_DOCUMENT_VIEW = "kk_kb_document_view"
KB_EDIT = "kk_kb_edit"
KB_RETIRE = "kk_kb_retire"
KB_RESTORE = "kk_kb_restore"
KB_HISTORY = "kk_kb_history"
KB_REVERT = "kk_kb_revert"
KB_DOCUMENT_EDIT = "kk_kb_document_edit"
KB_DOCUMENT_REPLACE = "kk_kb_document_replace"
