"""The Slack app and the `kakehashi` command line."""
