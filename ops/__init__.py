"""Operating Handoff in production: `python bot.py doctor` (doctor.py), the Slack scopes the app needs
(scopes.py), metrics (metrics.py, slack_client.py) and logs (logs.py).

docs/operating.md describes each check and its fix, why each scope is asked for, the metrics and the logs.
"""
