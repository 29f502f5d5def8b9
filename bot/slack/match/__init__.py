"""Matchmaking: the form, and the recommendation cards."""
