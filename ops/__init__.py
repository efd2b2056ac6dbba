"""Running Handoff in production: metrics, logs and checks (docs/operating.md)."""
