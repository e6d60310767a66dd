"""Purser: Slack chat-ops for a team's access to LLM APIs."""

__version__ = "0.1.0"
