"""Operating Handoff in production: `python bot.py doctor` (doctor.py), the Slack scopes the app needs
(scopes.py), and several web processes on one port (prefork.py).

docs/operating.md describes each check and its fix, why each scope is asked for, and scaling out.
"""
