"""Block Kit builders, typed with slack_sdk.models so sizes are checked when serialised."""
