"""Everything that speaks Slack: Bolt handlers, Block Kit builders, the Web API client."""
