"""What Slack and the outside send us: thin listeners that parse, call the domain and respond."""
from __future__ import annotations

from handlers import actions, commands, errors, handoff_command, home, middleware, views


def register(app, services, recorder) -> None:
    """Wire every listener to the Bolt app, in one place (`recorder`: the threads clicks are written down on)."""
    middleware.register(app, services)
    errors.register(app, services)
    actions.register(app, services, recorder)
    views.register(app, services)
    commands.register(app, services)
    handoff_command.register(app, services)
    home.register(app, services)
