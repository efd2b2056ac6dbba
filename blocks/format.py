"""Formatting shared by the block builders: escaping, local times, durations."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from blocks.texts import CATALOG, t


def escape(text: str | None) -> str:
    """Make outside text inert in mrkdwn: no mentions, no links, no entities."""
    if text is None:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str) -> dict:
    """A plain_text object: Slack never formats, mentions or links what is in it."""
    return {"type": "plain_text", "text": text or " ", "emoji": False}


def button(label: str, action_id: str, value, style: str | None = None) -> dict:
    b = {"type": "button", "action_id": action_id, "value": str(value), "text": plain(label)}
    if style:
        b["style"] = style
    return b


def clip(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def local_time(instant: datetime, tz: ZoneInfo, lang: str) -> str:
    loc = instant.astimezone(tz)
    wd = t("weekdays", lang).split()[loc.weekday()]
    mon = t("months", lang).split()[loc.month - 1]
    return t("datetime.format", lang, wd=wd, d=loc.day, mon=mon, hh=f"{loc.hour:02d}",
             mm=f"{loc.minute:02d}") + f" {loc.tzname()}"


def duration(minutes: float, lang: str) -> str:
    total = round(minutes)
    if total < 60:
        return t("duration.minutes", lang, m=total)
    return t("duration.hours", lang, h=total // 60, m=total % 60)


def reason_label(code: str | None, lang: str) -> str:
    """A reason code from the taxonomy in the user's language; anything else escaped."""
    key = f"reason.{code}"
    return t(key, lang) if key in CATALOG else escape(code)


def instant_param(value: datetime) -> dict:
    """A moment inside a queued message's parameters (JSON); shown in local time when sent."""
    return {"instant": value.isoformat()}


def render_params(params: dict, tz: ZoneInfo, lang: str) -> dict:
    out = {}
    for name, value in params.items():
        if isinstance(value, dict) and set(value) == {"instant"}:
            value = local_time(datetime.fromisoformat(value["instant"]), tz, lang)
        out[name] = value
    return out


def who(user: str | None, lang: str) -> str:
    """A person as a line names them: the Slack user, or, for a stage the CRM recorded without one, the CRM."""
    return t("card.who", lang, user=user) if user else t("card.who.nobody", lang)
