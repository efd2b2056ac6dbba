"""Slack messages as readable terminal text, for the demo."""
from __future__ import annotations

import textwrap


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


def render_call(call) -> str:
    p = call.params
    if call.method == "chat.postMessage":
        channel = str(p.get("channel"))
        where = f"DM to @{channel}" if channel.startswith(("U", "W")) else f"#{channel}"
        if p.get("thread_ts"):
            where += f", in the thread of {p['thread_ts']}"
        head = f"→ chat.postMessage, {where}"
        body = render_blocks(p.get("blocks")) or [p.get("text", "")]
    elif call.method == "chat.update":
        head = f"→ chat.update of {p.get('channel')}/{p.get('ts')} (the card changes in place)"
        body = render_blocks(p.get("blocks")) or [p.get("text", "")]
    elif call.method == "chat.postEphemeral":
        head = f"→ chat.postEphemeral to @{p.get('user')} in #{p.get('channel')} (only they see it)"
        body = [p.get("text", "")]
    elif call.method == "views.publish":
        head = f"→ views.publish: the App Home of @{p.get('user_id')}"
        body = render_blocks((p.get("view") or {}).get("blocks"))
    elif call.method == "views.open":
        view = p.get("view") or {}
        head = f"→ views.open: modal “{_text(view.get('title'))}”"
        body = render_blocks(view.get("blocks"))
    elif call.method == "files.completeUploadExternal":
        files = p.get("files")
        head = f"→ files.completeUploadExternal to #{p.get('channel_id')} (an image, uploaded with the message)"
        body = [str(p.get("initial_comment") or ""), f"[file {files}]"]
    else:
        head, body = f"→ {call.method}", []
    return head + "\n" + textwrap.indent("\n".join(body), "   │ ")
