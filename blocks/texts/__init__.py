"""The text catalog: every string a user sees, in English and Japanese, one module per surface.

`t(key, lang, **params)` formats one entry. Each surface's texts are side by side in both languages in its own
module (card.py, answers.py, outcome.py, webhook.py, kpi.py, reminders.py, digest.py, retro.py, home.py,
handoff.py, cli.py, events.py, demo.py, doctor.py, routing.py, salesforce.py, privacy.py); a key starts with its surface's name where it belongs to one. A test checks that
every key has both languages with the same placeholders, and that no key is defined twice.
"""
from __future__ import annotations

from blocks.texts import (
    answers,
    card,
    cli,
    demo,
    digest,
    doctor,
    events,
    handoff,
    home,
    kpi,
    outcome,
    privacy,
    reminders,
    retro,
    routing,
    salesforce,
    webhook,
)

SURFACES = (card, answers, outcome, webhook, kpi, demo, cli, events, reminders, digest, retro, home, handoff, doctor,
            routing, salesforce, privacy)


def _merge() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for surface in SURFACES:
        twice = merged.keys() & surface.TEXTS.keys()
        if twice:
            raise ValueError(f"text keys defined twice ({surface.__name__}): {sorted(twice)}")
        merged.update(surface.TEXTS)
    return merged


CATALOG: dict[str, dict[str, str]] = _merge()


def t(key: str, lang: str = "en", **params) -> str:
    entry = CATALOG[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**params) if params else text.replace("{{", "{").replace("}}", "}")
