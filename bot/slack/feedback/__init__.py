"""Feedback: 👍 / 👎 under an answer and the form asking what was wrong."""
