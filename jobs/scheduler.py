"""The in-process scheduler (APScheduler 3) and the outbox sender thread.

`serve` starts it unless SCHEDULER=off; `python bot.py clock` runs it alone, for
a separate clock process when web processes are scaled out.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from jobs import reports
from jobs import sla_sweep as sweep
from models import clicks, privacy
from models.requests import prune
from ops.metrics import timed_job

log = logging.getLogger("handoff.clock")


def prune_requests(services) -> None:
    with services.db.begin() as session:
        n = prune(session, services.now()) + clicks.prune(session, services.now())
    if n:
        log.info("pruned %d remembered Slack requests and applied clicks", n)


def sla_sweep(services, now: datetime | None = None) -> sweep.SweepResult:
    """Act on every SLA timer due at `now` (default: the services' clock), then wake the sender."""
    now = now or services.now()
    res = sweep.run(services.db, now, services.policy.sla, sweep.Targets.from_settings(services.settings))
    if res.sent:
        log.info("sla-sweep at %s: %d messages queued (%s)", now.isoformat(timespec="seconds"), res.sent,
                 ", ".join(f"{k} {v}" for k, v in sorted(res.actions.items())))
        services.notify()
    return res


def retention(services, now: datetime | None = None) -> int:
    """With RETENTION_DAYS above 0, erase every lead with no activity for that long (docs/privacy.md), a batch to
    a transaction, each once (an erased lead is never stale again); how many were erased."""
    days = services.settings.RETENTION_DAYS
    if days <= 0:
        return 0
    now = now or services.now()
    erased = 0
    while True:
        ids = services.db.transact(lambda session: privacy.retention_batch(session, now, days))
        if not ids:
            break
        erased += len(ids)
        services.notify()  # the Slack edits and lead.erased of this batch go out meanwhile
    if erased:
        log.info("retention at %s: %d lead(s) without activity for %d days erased", now.isoformat(timespec="seconds"),
                 erased, days)
    return erased


def weekly_digest(services, now: datetime | None = None) -> bool:
    """Queue the latest digest that has fallen due (once per week, whoever runs it). True when queued now."""
    return _queue_report(services, now, reports.digest_due, reports.queue_digest, "weekly digest")


def monthly_retro(services, now: datetime | None = None) -> bool:
    """Queue the latest retro that has fallen due (once per month). True when queued now."""
    return _queue_report(services, now, reports.retro_due, reports.queue_retro, "monthly retro")


def _queue_report(services, now, due_at, queue, name: str) -> bool:
    now = now or services.now()
    due = due_at(now, services.settings.clock)
    with services.db.begin() as session:
        queued = queue(session, due, services.settings.DIGEST_CHANNEL, now)
    if queued:
        log.info("%s for %s queued", name, due.period.label)
        services.notify()
    return queued


def build_scheduler(services) -> BackgroundScheduler:
    sched = BackgroundScheduler(timezone=services.settings.tz,
                                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    # Each run is timed into handoff_job_seconds{job} (ops/metrics.py).
    sched.add_job(timed_job("prune-requests", prune_requests), "interval", hours=1, args=[services],
                  id="prune-requests")
    # Every minute, and once at start: what fell due while the app was down goes out now, once.
    sched.add_job(timed_job("sla-sweep", sla_sweep), "interval", minutes=1, args=[services], id="sla-sweep",
                  next_run_time=datetime.now(services.settings.tz))
    # The reports are keyed by period, so checking often is free: on time within five minutes,
    # and a report missed while the app was down goes out once when it is back.
    if services.settings.DIGEST_CHANNEL:
        for fn, name in ((weekly_digest, "weekly-digest"), (monthly_retro, "monthly-retro")):
            sched.add_job(timed_job(name, fn), "interval", minutes=5, args=[services], id=name,
                          next_run_time=datetime.now(services.settings.tz))
    if services.settings.RETENTION_DAYS > 0:  # daily at 03:00 local time, when nobody is working the leads
        sched.add_job(timed_job("retention", retention), "cron", hour=3, minute=0, args=[services], id="retention")
    return sched


def start_background(services, stop: threading.Event, with_scheduler: bool):
    """Start the outbox sender, the other lanes and the click queue (always) and the scheduler (unless off).
    Returns the scheduler."""
    services.sender.start(stop)
    if services.clicks is not None:
        services.clicks.start(stop)
    for lane in services.lanes:
        lane.start(stop)
    if not with_scheduler:
        return None
    sched = build_scheduler(services)
    sched.start()
    log.info("scheduler started")
    return sched
