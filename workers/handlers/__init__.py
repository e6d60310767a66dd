"""One function per outbox action kind: ``handler(runtime, claimed_action)``.

Each does its outside work (provider, Slack) first and then, in one store
transaction, records the result and completes the action, so a retry after any
failure finds either nothing done or everything done.
"""
