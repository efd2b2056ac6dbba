"""The /kpi slash command (SPEC section 4). Answers are private (ephemeral) to the person who typed it."""
from __future__ import annotations

from blocks.texts import t

SUBCOMMANDS = ("week", "month", "rep", "source", "plan", "target")


def kpi_answer(text: str, user: str, settings) -> str:
    """What /kpi says back, for the words typed after it."""
    lang = settings.LANGUAGE
    words = (text or "").split()
    if not settings.is_manager(user):
        return t("kpi.refused", lang)
    if not words or words[0].lower() == "help":
        return t("kpi.usage", lang)
    if words[0].lower() in SUBCOMMANDS:
        return t("kpi.not_yet", lang, what=words[0].lower())
    return t("kpi.unknown", lang, word=words[0]) + "\n\n" + t("kpi.usage", lang)


def register(app, services) -> None:
    @app.command("/kpi")
    def on_kpi(ack, command):
        ack(text=kpi_answer(command.get("text", ""), command["user_id"], services.settings))
