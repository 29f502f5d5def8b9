"""The ground every layer stands on: the settings object and the one error root.

Imports point one way: bot → retrieval → knowledge, prompts → core.
"""
