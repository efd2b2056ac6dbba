"""Slack messages as readable terminal text, for the demo."""
from __future__ import annotations

import textwrap

from blocks.texts import t


def _text(obj) -> str:
    return (obj or {}).get("text", "") if isinstance(obj, dict) else str(obj or "")


def _element(e: dict) -> str:
    if e.get("type") in ("users_select", "static_select"):
        return f"[{_text(e.get('placeholder'))} ▾]"
    return f"[{_text(e.get('text'))}]"


def render_blocks(blocks: list[dict]) -> list[str]:
    lines: list[str] = []
    for b in blocks or []:
        kind = b.get("type")
        if kind == "header":
            lines.append(f"== {_text(b.get('text'))} ==")
        elif kind == "section":
            if b.get("text"):
                lines.extend(_text(b["text"]).splitlines())
            for f in b.get("fields", []):
                lines.append(f"  {_text(f)}")
        elif kind == "context":
            lines.append("  · " + "  ".join(_text(e) for e in b.get("elements", [])))
        elif kind == "actions":
            lines.append("  " + " ".join(_element(e) for e in b.get("elements", [])))
        elif kind == "input":
            lines.append(f"  {_text(b.get('label'))}: ____")
        elif kind == "divider":
            lines.append("  ---")
    return lines


def render_call(call, lang: str = "en") -> str:
    p = call.params
    if call.method == "chat.postMessage":
        channel = str(p.get("channel"))
        where = t("render.dm", lang, user=channel) if channel.startswith(("U", "W")) else f"#{channel}"
        if p.get("thread_ts"):
            where = t("render.thread", lang, where=where, ts=p["thread_ts"])
        head = f"→ chat.postMessage, {where}"
        body = render_blocks(p.get("blocks")) or [p.get("text", "")]
    elif call.method == "chat.update":
        head = "→ chat.update " + t("render.update", lang, channel=p.get("channel"), ts=p.get("ts"))
        body = render_blocks(p.get("blocks")) or [p.get("text", "")]
    elif call.method == "chat.postEphemeral":
        head = "→ chat.postEphemeral " + t("render.ephemeral", lang, user=p.get("user"), channel=p.get("channel"))
        body = [p.get("text", "")]
    elif call.method == "views.publish":
        head = "→ views.publish: " + t("render.home", lang, user=p.get("user_id"))
        body = render_blocks((p.get("view") or {}).get("blocks"))
    elif call.method == "views.open":
        view = p.get("view") or {}
        head = "→ views.open: " + t("render.modal", lang, title=_text(view.get("title")))
        body = render_blocks(view.get("blocks"))
    elif call.method == "files.completeUploadExternal":
        head = "→ files.completeUploadExternal " + t("render.upload", lang, channel=p.get("channel_id"))
        body = [str(p.get("initial_comment") or ""), f"[file {p.get('files')}]"]
    else:
        head, body = f"→ {call.method}", []
    return head + "\n" + textwrap.indent("\n".join(body), "   │ ")
