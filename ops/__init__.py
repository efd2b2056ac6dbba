"""Running Handoff in production: pre-forked web processes (prefork.py); see docs/operating.md."""
