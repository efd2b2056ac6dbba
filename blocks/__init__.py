"""How things look in Slack: pure functions from domain objects to Block Kit, and the texts."""
