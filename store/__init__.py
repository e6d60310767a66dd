"""The workspace store: models, migrations and the domain operations.

This package is the only code that changes state. It imports neither Slack nor
dramatiq: callers (the bot, the workers, the clock, the CLI) pass in an actor and
get back plain results or a typed error from :mod:`store.errors`.
"""
