"""Answers: asking, the answer message and its streaming, the sources modal, sharing, a match card's details."""
