"""Every kind of outbox row and the one module that delivers it, registered here and nowhere else.

A new destination is one new module (a payload type, a `deliver` function, its `DELIVERY`) and one line
below; the sender, the queue and the tests of the queue need no change. docs/operating.md lists the kinds.
"""
from __future__ import annotations

from outbox.deliveries import (
    card_post,
    card_update,
    chart,
    digest,
    feedback,
    handover_card,
    home,
    notice,
    redact,
    reminder,
    report,
    retro,
)
from outbox.deliveries.base import Delivery

REGISTRY: dict[str, Delivery] = {d.kind: d for d in (
    card_post.DELIVERY,
    card_update.DELIVERY,
    notice.DELIVERY,
    feedback.DELIVERY,
    home.DELIVERY,
    reminder.DELIVERY,
    report.DELIVERY,
    digest.DELIVERY,
    chart.DELIVERY,
    retro.DELIVERY,
    handover_card.DELIVERY,
    redact.DELIVERY,
)}
