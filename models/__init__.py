"""What Handoff stores and the rules on it. Never imports slack_bolt or slack_sdk."""
