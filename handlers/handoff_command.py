"""The /handoff slash command: out of office for round-robin (`/handoff ooo …`)."""
from __future__ import annotations

import re
from datetime import date

from blocks.texts import t
from handlers.errors import answered_when_down
from models.ownership import away_list, clear_away, set_away

MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def handoff_answer(text: str, user: str, services, context=None) -> str:
    """What /handoff says back. Changes are committed before the answer is given, once per request:
    the same signed request replayed changes nothing (`context` names it, see Services.once)."""
    settings, now = services.settings, services.now()
    lang = settings.LANGUAGE
    words = (text or "").split()
    usage = t("handoff.usage", lang)
    if not words or words[0].lower() == "help":
        return usage
    if words[0].lower() != "ooo":
        return t("handoff.unknown", lang, arg=words[0]) + "\n\n" + usage
    rest = words[1:]
    today = now.astimezone(settings.tz).date()
    if not rest:
        with services.db.begin() as session:
            rows = away_list(session, today)
        if not rows:
            return t("handoff.ooo_none", lang)
        lines = "\n".join(t("handoff.ooo_line", lang, user=u, day=d.isoformat()) for u, d in rows)
        return t("handoff.ooo_list", lang, lines=lines)

    target = user
    m = MENTION.match(rest[0])
    if m:
        target, rest = m.group(1), rest[1:]
        if target != user and not services.teams.manages(user, target):  # MANAGER_IDS, or a manager of their team
            return t("notice.managers_only", lang)
    if rest and rest[0].lower() == "off" and len(rest) == 1:
        with services.once(context) as session:
            if session is None:
                return t("notice.already_done", lang)
            clear_away(session, user=target, by=user, now=now)
        return t("handoff.ooo_cleared", lang, user=target)
    if len(rest) == 2 and rest[0].lower() == "until":
        try:
            day = date.fromisoformat(rest[1])
        except ValueError:
            return t("handoff.bad_date", lang, arg=rest[1]) + "\n\n" + usage
        if day < today:
            return t("handoff.past_date", lang, day=day.isoformat())
        with services.once(context) as session:
            if session is None:
                return t("notice.already_done", lang)
            set_away(session, user=target, until=day, by=user, now=now)
        return t("handoff.ooo_set", lang, user=target, day=day.isoformat())
    return t("handoff.unknown", lang, arg=" ".join(rest) or "ooo") + "\n\n" + usage


def register(app, services) -> None:
    @app.command("/handoff")
    @answered_when_down(services)
    def on_handoff(ack, command, context):
        ack(text=handoff_answer(command.get("text", ""), command["user_id"], services, context))
