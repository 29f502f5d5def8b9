"""👍 / 👎 under an answer, and the 👎 form asking what was wrong."""

from __future__ import annotations

from bot.slack.blockkit import JSON, Block, checkboxes, input_block, modal, option, plain_text, text_input
from bot.slack.ids import FEEDBACK, FEEDBACK_VIEW
from prompts.messages import t

# Why an answer was not helpful: the codes stored with the feedback (labels: slack_feedback_reason_<code>).
FEEDBACK_REASONS = ("wrong", "outdated", "irrelevant", "sources", "other")


def reason_label(code: str, language: str = "ja") -> str:
    """A 👎 reason as people read it; an unknown code as it is."""
    return t(f"slack_feedback_reason_{code}", language) if code in FEEDBACK_REASONS else code


def feedback_block(answer_id: str) -> Block:
    """Slack's native 👍 / 👎 (feedback_buttons in a context_actions block); the value names the answer."""
    return {
        "type": "context_actions",
        "block_id": f"kk_feedback_{answer_id}"[:255],
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK,
                "positive_button": {
                    "text": plain_text("👍"),
                    "value": f"up:{answer_id}",
                    "accessibility_label": t("slack_helpful_label", "ja"),
                },
                "negative_button": {
                    "text": plain_text("👎"),
                    "value": f"down:{answer_id}",
                    "accessibility_label": t("slack_not_helpful_label", "ja"),
                },
            }
        ],
    }


def feedback_modal(*, private_metadata: JSON, language: str) -> Block:
    return modal(
        callback_id=FEEDBACK_VIEW,
        private_metadata=private_metadata,
        title=t("slack_feedback_title", language),
        submit=t("slack_feedback_send", language),
        close=t("slack_cancel", language),
        blocks=[
            input_block(
                "reasons",
                t("slack_feedback_what", language),
                checkboxes([option(reason_label(code, language), code) for code in FEEDBACK_REASONS]),
            ),
            input_block(
                "comment",
                t("slack_feedback_details", language),
                text_input(max_length=2000, multiline=True),
                optional=True,
            ),
        ],
    )
