"""What running Handoff in production rests on: the Slack scopes the app needs (scopes.py), metrics (metrics.py,
the counted Slack client in slack_client.py) and logs (logs.py). The outbox and the handlers use these, so
nothing here imports them; `python bot.py doctor` (doctor.py, at the top) checks an installation with them.

docs/operating.md says why each scope is asked for, what is counted and how lines are written.
"""
