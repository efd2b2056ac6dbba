"""Operating Handoff: `python bot.py doctor` (doctor.py) and the Slack scopes the app needs (scopes.py).

docs/operating.md describes each check, its fix, and why each scope is asked for.
"""
