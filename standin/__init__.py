"""A local Slack Web API stand-in and the offline demo built on it."""
