"""How things reach Slack: the durable queue's sender, paced and retrying."""
