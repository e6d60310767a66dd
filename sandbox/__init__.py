"""A local stand-in for Slack: its Web API (used by the tests and by `make run` without Slack credentials)."""
