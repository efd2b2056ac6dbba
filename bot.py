"""Handoff's only entry point: serve | clock | deliver | run-job | import-leads | kpi | outbox | events | hubspot-setup |
salesforce-setup | salesforce status | migrate | doctor | demo | routing."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading

import logsafe
from blocks.texts import t
from ops import logs, metrics
from runtime import StartupError, build_runtime, open_database, quiet_garbage_collector
from settings import Settings, SettingsError, load_settings

log = logging.getLogger("handoff")
JOBS = ("sla-sweep", "weekly-digest", "monthly-retro", "retention", "outbox")


class CommandError(Exception):
    """A command cannot run; the message is one line for the user."""


# Commands -------------------------------------------------------------------
def serve_needs(settings: Settings) -> list[str]:
    """The settings `serve` cannot start without."""
    needed = ["SLACK_BOT_TOKEN", "HANDOFF_CHANNEL", "MARKETING_CHANNEL"]
    if not settings.socket_mode:
        needed.insert(1, "SLACK_SIGNING_SECRET")
    return needed


def cmd_serve(settings: Settings, args) -> int:
    settings.require(*serve_needs(settings))
    if not settings.LEAD_WEBHOOK_TOKEN:
        log.warning("LEAD_WEBHOOK_TOKEN is not set: POST /hooks/leads will answer 503 until it is")
    metrics_dir = metrics.own_directory()  # before anything counts; its children inherit it (ops/metrics.py)
    try:
        return _serve(settings)
    finally:
        metrics_dir.release()


def _serve(settings: Settings) -> int:
    rt = build_runtime(settings)  # the database migrated, the token checked: a one-line error otherwise
    mode = "Socket Mode" if settings.socket_mode else "HTTP, Slack requests at POST /slack/events"
    if settings.WEB_CONCURRENCY > 1 and not settings.socket_mode:  # pre-forked web processes (prefork.py)
        import prefork

        rt.db.engine.dispose()  # the workers open their own
        on_sigterm()
        processes = t("cli.web_processes", settings.LANGUAGE, n=settings.WEB_CONCURRENCY)
        return prefork.serve(settings, rt.slack_identity, on_ready=lambda: logs.announce(
            t("cli.serving", settings.LANGUAGE, port=settings.PORT, mode=f"{mode}, {processes}")))
    if settings.WEB_CONCURRENCY > 1:
        log.warning("WEB_CONCURRENCY applies to HTTP mode; Socket Mode runs one web process")
    rt.start_delivery_process()  # the senders and the scheduler, in their own process (outbox/process.py)
    socket_mode = connect_socket_mode(rt) if settings.socket_mode else None
    server = rt.make_server()
    quiet_garbage_collector()
    logs.announce(t("cli.serving", settings.LANGUAGE, port=settings.PORT, mode=mode))
    on_sigterm()
    try:
        server.run()  # returns on SIGTERM / Ctrl-C after the requests being answered are answered
    except KeyboardInterrupt:
        pass
    finally:
        if socket_mode is not None:  # as the HTTP server does: no more requests, then finish the acknowledged
            socket_mode.close()
        rt.shutdown()
    return 0


def cmd_web(settings: Settings, args) -> int:
    """Started by `serve` with WEB_CONCURRENCY above 1: gunicorn's arbiter and its workers (prefork.py)."""
    import prefork

    return prefork.run_web(settings, args.wake_fd, args.state, args.lifeline_fd, json.loads(args.identity) or None)


def connect_socket_mode(rt):
    """Open the Socket Mode connection (docs/operating.md#socket-mode). Slack refusing the app-level token (or
    not answering) is one line and a clean stop, not a traceback with the delivery process left behind."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    settings = rt.settings
    handler = SocketModeHandler(rt.bolt, settings.SLACK_APP_TOKEN)
    try:
        handler.connect()
    except Exception as exc:  # Slack refused the token (SlackApiError), or there is no route to it
        handler.close()
        rt.shutdown()
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else " ".join(str(exc).split())[:200]
        raise StartupError(t("cli.app_token_refused", settings.LANGUAGE, url=settings.SLACK_API_URL,
                             error=error)) from None
    return handler


def on_sigterm() -> None:
    """Treat SIGTERM (what process managers and hosting platforms send on deploy) like Ctrl-C."""
    import signal

    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM stops at once
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def cmd_clock(settings: Settings, args) -> int:
    settings.require("SLACK_BOT_TOKEN")
    rt = build_runtime(settings)
    # What this process counts is scraped from it: GET /metrics on METRICS_PORT (ops/metrics.py).
    scrape = metrics.serve_alone(settings, rt.db, rt.services.now, settings.METRICS_PORT) \
        if settings.METRICS_PORT else None
    stop = threading.Event()
    quiet_garbage_collector()
    rt.start_background(stop, scheduler=True)
    on_sigterm()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if scrape is not None:
            scrape.close()
        rt.shutdown()
    return 0


def cmd_deliver(settings: Settings, args) -> int:
    """The delivery process `serve` starts (outbox/process.py): the senders, and the scheduler unless
    SCHEDULER=off; woken through `--wake-fd`, and stopped when that pipe closes (its `serve` is gone)."""
    from outbox.process import DELIVERY_NICE, listen_for_wakes, say_ready

    settings.require("SLACK_BOT_TOKEN")
    os.nice(DELIVERY_NICE)
    rt = build_runtime(settings, reconcile=False, web=False)  # serve reconciled the destinations already
    stop, done = threading.Event(), threading.Event()
    quiet_garbage_collector()
    rt.start_background(stop)
    if args.wake_fd is not None:
        def parent_gone():
            log.info("the web process is gone; the delivery process stops")
            done.set()
        listen_for_wakes(args.wake_fd, rt.services.woken, parent_gone=parent_gone)
    on_sigterm()
    say_ready(args.ready_fd)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        rt.shutdown()
    return 0


def cmd_run_job(settings: Settings, args) -> int:
    lang = settings.LANGUAGE
    if args.name not in JOBS:
        raise CommandError(t("cli.job.unknown", lang, name=args.name, jobs=", ".join(JOBS)))
    at = parse_at(args.at, settings)
    settings.require("SLACK_BOT_TOKEN")
    rt = build_runtime(settings, now=shifted_clock(at) if at else None, verify_token=False, reconcile=False)
    if args.name == "sla-sweep":
        from jobs.scheduler import sla_sweep

        res = sla_sweep(rt.services)
        print(t("cli.sweep.done", lang, at=rt.services.now().isoformat(timespec="seconds"), looked=res.looked_at,
                sent=res.sent, errors=res.errors))
    elif args.name in ("weekly-digest", "monthly-retro"):
        from jobs import scheduler

        settings.require("DIGEST_CHANNEL")
        job = scheduler.weekly_digest if args.name == "weekly-digest" else scheduler.monthly_retro
        queued = job(rt.services)
        print(t("cli.report.queued" if queued else "cli.report.already", lang, name=args.name))
    elif args.name == "retention":
        from jobs.scheduler import retention

        if settings.RETENTION_DAYS <= 0:
            print(t("cli.retention.off", lang))
        else:
            print(t("cli.retention.done", lang, n=retention(rt.services), days=settings.RETENTION_DAYS))
    until = rt.services.now()  # what is due by the job's instant goes out; later retries wait for their time
    rt.services.clicks.drain(args.timeout)  # clicks written down and not yet applied first: they queue messages
    counts = rt.services.sender.drain(timeout=args.timeout)
    late = []  # what did not go out in time; said after everything else had its turn
    if counts["pending"]:
        late.append(t("cli.outbox.timeout", lang, pending=counts["pending"], seconds=args.timeout))
    else:
        print(t("cli.outbox.done", lang, **counts))
    if rt.services.events is not None and rt.services.events.lanes:
        from models import events

        with rt.db.begin() as session:
            before = events.counts(session)
        left = rt.services.events.drain(until, timeout=args.timeout)
        with rt.db.begin() as session:
            after = events.counts(session)
        if left:
            late.append(t("cli.events.timeout", lang, pending=left, seconds=args.timeout))
        else:
            print(t("cli.events.done", lang, sent=after["sent"] - before["sent"],
                    failed=after["failed"] - before["failed"], pending=after["pending"]))
    from models import crm_sync, crm_tasks

    for lane, status in ((rt.services.hubspot, crm_sync.status), (rt.services.salesforce, crm_tasks.status)):
        if lane is None:
            continue
        left = lane.drain(until, timeout=args.timeout)
        if left:
            late.append(t(f"cli.{lane.name}.timeout", lang, pending=left, seconds=args.timeout))
            continue
        with rt.db.begin() as session:
            state = status(session, lane.destination_id, rt.services.now())
        print(t(f"cli.{lane.name}.done", lang, pending=state["pending"], not_found=state["not_found"],
                refused=state["refused"], tasks=state.get("tasks_pending", 0)))
    if late:
        raise CommandError("; ".join(late))
    return 0


def shifted_clock(at):
    """A clock that reads `at` now and runs on from there (so retries and backoff still come due)."""
    from handlers.services import utcnow

    started = utcnow()
    return lambda: at + (utcnow() - started)


def parse_at(value: str | None, settings: Settings):
    from models.leads import parse_instant

    if value is None:
        return None
    at = parse_instant(value, settings.tz)
    if at is None:
        raise CommandError(t("cli.bad_instant", settings.LANGUAGE, value=value))
    return at


def cmd_import(settings: Settings, args) -> int:
    from handlers.services import utcnow
    from models.importer import ImportFailed, import_csv
    from models.leads import Policy

    db = open_database(settings)
    policy = Policy.from_settings(settings, post_cards=False)  # an import posts nothing to Slack
    lang = settings.LANGUAGE

    def progress(n: int) -> None:
        print(t("cli.import.progress", lang, n=n), file=sys.stderr, flush=True)

    try:
        created, updated = import_csv(db, args.file, policy, settings.tz, utcnow(), progress=progress)
    except ImportFailed as exc:
        for line, field, key, params in exc.problems[:200]:
            print(t("cli.import.line", lang, line=line, field=field, message=t(key, lang, **params)), file=sys.stderr)
        if len(exc.problems) > 200:
            print(f"… {len(exc.problems) - 200} more", file=sys.stderr)
        raise CommandError(t(exc.key, lang, path=args.file, count=exc.bad_rows)) from None
    print(t("cli.import.done", lang, created=created, updated=updated, path=args.file))
    return 0


def cmd_kpi(settings: Settings, args) -> int:
    import json

    from blocks import kpi as kpi_blocks
    from handlers.services import utcnow
    from models.kpi import PeriodError, compute, parse_period
    from models.teams import Teams

    lang = settings.LANGUAGE
    at = parse_at(args.at, settings) or utcnow()
    try:
        period = parse_period(args.kind, args.period, at, settings.tz)
    except PeriodError as exc:
        raise CommandError(t("kpi.bad_period", lang, text=str(exc), kind=t(f"kpi.{args.kind}", lang),
                             example="2026-W47" if args.kind == "week" else "2026-11")) from None
    teams = Teams.from_settings(settings)
    if args.team is not None and args.team not in teams.by_id:
        raise CommandError(t("kpi.unknown_team", lang, team=args.team, teams=", ".join(teams.by_id) or "-"))
    scope = teams.kpi_scope(args.team)
    db = open_database(settings)
    with db.begin() as session:
        report = compute(session, period, at, settings.clock, **scope)
        previous = (compute(session, period.previous(settings.tz), at, settings.clock, **scope)
                    if args.format == "text" else None)
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        sys.stdout.write(kpi_blocks.to_csv(report))
    else:
        print(kpi_blocks.text(report, previous, lang))
    return 0


def cmd_outbox(settings: Settings, args) -> int:
    """`outbox list [--failed] [--limit N]`: what was not delivered; `outbox retry ID…|--all-failed`: send again."""
    from handlers.services import utcnow
    from models import outbox as queue

    lang = settings.LANGUAGE
    usage = CommandError(t("cli.outbox.usage", lang))
    args = _outbox_args(args, usage)
    if args.action == "list":
        if args.ids or args.all_failed:
            raise usage
        limit = 50
        if args.limit is not None:
            limit = _whole_number(args.limit)
            if not limit:
                raise CommandError(t("cli.outbox.bad_limit", lang, value=args.limit))
        db = open_database(settings)
        with db.begin() as session:
            rows, total = queue.unsent(session, failed_only=args.failed, limit=limit)
            if not rows:
                print(t("cli.outbox.none_failed" if args.failed else "cli.outbox.none", lang))
                return 0
            col = {k: t(f"cli.outbox.col.{k}", lang)
                   for k in ("id", "status", "kind", "channel", "lead", "attempts", "created")}
            print(t("cli.outbox.header", lang, **col))
            for r in rows:
                error = " ".join((r.last_error or "").split())
                print(t("cli.outbox.row", lang, id=r.id, status=t(f"cli.outbox.status.{r.status}", lang), kind=r.kind,
                        channel=r.channel or "-", lead=r.lead_id if r.lead_id is not None else "-",
                        attempts=r.attempts, created=r.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
                        error=error[:200] + ("…" if len(error) > 200 else "")))
        print(t("cli.outbox.shown" if len(rows) == total else "cli.outbox.more", lang, shown=len(rows), total=total))
        return 0
    if args.action == "retry":
        if args.failed or args.limit is not None or bool(args.ids) == args.all_failed:
            raise usage
        ids = []
        for value in args.ids:
            if _whole_number(value.removeprefix("#")) is None:
                raise CommandError(t("cli.outbox.bad_id", lang, value=value))
            ids.append(_whole_number(value.removeprefix("#")))
        db = open_database(settings)
        with db.begin() as session:  # all or nothing: every id named must be a failed message
            if args.all_failed:
                ids = queue.failed_ids(session)
                if not ids:
                    print(t("cli.outbox.nothing_to_retry", lang))
                    return 0
            else:
                ids = sorted(set(ids))
                status = queue.statuses(session, ids)
                if missing := [i for i in ids if i not in status]:
                    raise CommandError(t("cli.outbox.unknown_id", lang, ids=", ".join(f"#{i}" for i in missing)))
                if not_failed := [i for i in ids if status[i] != "failed"]:
                    raise CommandError(t("cli.outbox.not_failed", lang, ids=", ".join(f"#{i}" for i in not_failed),
                                         statuses=", ".join(f"#{i} {status[i]}" for i in not_failed)))
            n = queue.requeue(session, ids, utcnow())
        shown = ", ".join(f"#{i}" for i in ids[:20]) + (f", … (+{len(ids) - 20})" if len(ids) > 20 else "")
        print(t("cli.outbox.retried", lang, n=n, ids=shown))
        return 0
    raise usage


def _outbox_args(args, usage: CommandError) -> argparse.Namespace:
    """The words after `outbox`, options anywhere among them (`retry --all-failed`, `list --failed`); bad
    usage is one line (CommandError), not argparse's usage block."""
    p = _words("bot.py outbox", usage)
    p.add_argument("action", nargs="?")
    p.add_argument("ids", nargs="*")
    p.add_argument("--failed", action="store_true")
    p.add_argument("--limit")
    p.add_argument("--all-failed", action="store_true")
    words = p.parse_intermixed_args(args.words)
    words.failed = words.failed or args.failed
    words.all_failed = words.all_failed or args.all_failed
    if args.limit is not None:
        if words.limit is not None:
            raise usage
        words.limit = args.limit
    return words


def _words(prog: str, usage: CommandError) -> argparse.ArgumentParser:
    """A parser for a command's words whose every mistake is `usage`: one line, not argparse's block."""

    class Words(argparse.ArgumentParser):
        def error(self, message):
            raise usage

    return Words(prog=prog, add_help=False)


def _whole_number(value: str) -> int | None:
    """`value` as a whole number that fits a database id (ASCII digits only), else None."""
    import re

    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else None


def cmd_events(settings: Settings, args) -> int:
    """`events list [--failed] [--limit N]`: deliveries, newest first; `events replay --since T [--type T] [--url
    URL]`: send those events again, with their ids (docs/events.md)."""
    from handlers.services import utcnow
    from models import events

    lang = settings.LANGUAGE
    usage = CommandError(t("cli.events.usage", lang))
    p = _words("bot.py events", usage)
    p.add_argument("action", choices=("list", "replay"))
    p.add_argument("--failed", action="store_true")
    p.add_argument("--limit")
    p.add_argument("--since")
    p.add_argument("--type")
    p.add_argument("--url")
    words = p.parse_args(args.words)
    if words.action == "list":
        if words.since or words.type or words.url:
            raise usage
        limit = 50 if words.limit is None else _whole_number(words.limit)
        if not limit:
            raise CommandError(t("cli.events.bad_limit", lang, value=words.limit))
        db = open_database(settings)
        with db.begin() as session:
            rows, total = events.deliveries(session, failed_only=words.failed, limit=limit)
            if not rows:
                print(t("cli.events.none_failed" if words.failed else "cli.events.none", lang))
                return 0
            print(t("cli.events.header", lang, **{k: t(f"cli.events.col.{k}", lang)
                                                   for k in ("id", "status", "type", "lead", "attempts", "when",
                                                             "url")}))
            for d, _event_id, type_, url in rows:
                error = " ".join((d.last_error or "").split())
                print(t("cli.events.row", lang, id=d.id, status=t(f"cli.events.status.{d.status}", lang), type=type_,
                        lead=d.lead_id if d.lead_id is not None else "-", attempts=d.attempts, url=url,
                        when=d.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M"),
                        error=error[:200] + ("…" if len(error) > 200 else "")))
        print(t("cli.events.shown" if len(rows) == total else "cli.events.more", lang, shown=len(rows), total=total))
        return 0
    if words.failed or words.limit is not None or not words.since:
        raise usage
    since = parse_at(words.since, settings)
    if words.type is not None and words.type not in events.ALL_TYPES:
        raise CommandError(t("cli.events.bad_type", lang, value=words.type, types=", ".join(events.ALL_TYPES)))
    if not settings.EVENT_WEBHOOK_URLS:
        raise CommandError(t("cli.events.no_endpoints", lang))
    if words.url is not None and words.url not in settings.EVENT_WEBHOOK_URLS:
        raise CommandError(t("cli.events.bad_url", lang, value=words.url, urls=", ".join(settings.EVENT_WEBHOOK_URLS)))
    db = open_database(settings)
    with db.begin() as session:
        destinations = events.configure(session, settings.EVENT_WEBHOOK_URLS, utcnow(), reconcile=False)
        if words.url is not None and words.url not in destinations:
            raise CommandError(t("cli.events.inactive_url", lang, value=words.url))
        chosen = [destinations[words.url]] if words.url else list(destinations.values())
        n = events.replay(session, since=since, now=utcnow(), type=words.type, destination_ids=chosen)
    print(t("cli.events.replayed", lang, n=n))
    return 0


def cmd_hubspot_setup(settings: Settings, args) -> int:
    """Create the HubSpot property group and properties Handoff writes (docs/hubspot.md), idempotently."""
    from outbox import hubspot

    lang = settings.LANGUAGE
    if not settings.HUBSPOT_TOKEN:
        raise CommandError(t("cli.hubspot.no_token", lang))
    client = hubspot.make_client(settings.HUBSPOT_TOKEN, settings.HUBSPOT_API_URL)
    try:
        done = hubspot.setup(client)
    except hubspot.SetupError as exc:
        key = "cli.hubspot.token_refused" if exc.status in (401, 403) else "cli.hubspot.refused"
        raise CommandError(t(key, lang, name=exc.name, status=exc.status, detail=exc.detail[:300])) from None
    except Exception as exc:  # no route to HubSpot: one line, not a traceback
        raise CommandError(t("cli.hubspot.unreachable", lang, url=settings.HUBSPOT_API_URL,
                             error=" ".join(str(exc).split())[:200])) from None
    for name, created in done:
        print(t("cli.hubspot.created" if created else "cli.hubspot.exists", lang, name=name))
    return 0


def salesforce_connection(settings: Settings):
    from outbox import salesforce

    if not settings.SALESFORCE_LOGIN_URL:
        raise CommandError(t("cli.salesforce.not_set", settings.LANGUAGE))
    return salesforce.Connection(settings.SALESFORCE_LOGIN_URL, settings.SALESFORCE_CLIENT_ID,
                                 settings.SALESFORCE_CLIENT_SECRET, settings.SALESFORCE_API_BUDGET, keep_budget=False)


def salesforce_trouble(settings: Settings, exc: Exception) -> CommandError:
    """One line for a login Salesforce refused or an org that cannot be reached."""
    from outbox import salesforce

    lang, url = settings.LANGUAGE, settings.SALESFORCE_LOGIN_URL
    if isinstance(exc, salesforce.Refused) and exc.code == "CERTIFICATE":
        return CommandError(t("cli.salesforce.certificate", lang, url=url, detail=exc.message[:300]))
    if isinstance(exc, salesforce.Refused):
        return CommandError(t("cli.salesforce.login_refused", lang, url=url, detail=str(exc)[:300]))
    return CommandError(t("cli.salesforce.unreachable", lang, url=url, error=" ".join(str(exc).split())[:300]))


def cmd_salesforce_setup(settings: Settings, args) -> int:
    """Create the custom fields and the permission set Handoff needs in Salesforce (docs/salesforce.md),
    idempotently."""
    from outbox import salesforce

    lang = settings.LANGUAGE
    connection = salesforce_connection(settings)
    try:
        done = salesforce.setup(connection)
    except salesforce.SetupError as exc:
        raise CommandError(t("cli.salesforce.refused", lang, name=exc.name, detail=exc.detail[:300])) from None
    except (salesforce.Refused, salesforce.Paused) as exc:
        raise salesforce_trouble(settings, exc) from None
    for name, created in done:
        print(t("cli.salesforce.created" if created else "cli.salesforce.exists", lang, name=name))
    return 0


def cmd_salesforce(settings: Settings, args) -> int:
    """`salesforce status`: where the write-back stands (docs/salesforce.md)."""
    from blocks.format import duration
    from handlers.services import utcnow
    from models import crm_sync, crm_tasks
    from outbox import salesforce

    lang = settings.LANGUAGE
    if args.words != ["status"]:
        raise CommandError(t("cli.salesforce.usage", lang))
    connection = salesforce_connection(settings)
    db = open_database(settings)
    now = utcnow()
    with db.begin() as session:
        destination = crm_sync.configure(session, crm_sync.SALESFORCE, settings.SALESFORCE_LOGIN_URL, now,
                                         reconcile=False)
        state = crm_tasks.status(session, destination, now)
    print(t("cli.salesforce.records", lang, found=state["found"], not_found=state["not_found"],
            refused=state["refused"]))
    if state["pending"] or state["tasks_pending"]:
        print(t("cli.salesforce.pending", lang, pending=state["pending"], tasks=state["tasks_pending"],
                oldest=duration((state["oldest_pending_seconds"] or 0) / 60, lang)))
    else:
        print(t("cli.salesforce.none_pending", lang))
    print(t("cli.salesforce.tasks", lang, written=state["tasks_written"], refused=state["tasks_refused"],
            waiting=state["tasks_waiting"]))
    for kind, key in (("not_found", "last_not_found"), ("refused", "last_refused"), ("retry", "last_retry"),
                      ("task_refused", "last_task_refused")):
        if state.get(key):
            print(t("cli.salesforce.last", lang, kind=t(f"cli.salesforce.kind.{kind}", lang), error=state[key]))
    try:
        limits = connection.restful("limits")
        api = limits["DailyApiRequests"]
        used = api["Max"] - api["Remaining"]
        print(t("cli.salesforce.api", lang, used=used, max=api["Max"], share=used / max(api["Max"], 1),
                budget=settings.SALESFORCE_API_BUDGET))
    except (salesforce.Refused, salesforce.Paused, KeyError, TypeError) as exc:
        print(t("cli.salesforce.api_unknown", lang, error=" ".join(str(exc).split())[:300]))
    return 0


def cmd_migrate(settings: Settings, args) -> int:
    from sqlalchemy.engine import make_url

    open_database(settings)
    print(t("cli.migrated", settings.LANGUAGE,
            url=make_url(settings.DATABASE_URL).render_as_string(hide_password=True)))
    return 0


def cmd_doctor(settings: Settings, args) -> int:
    """`doctor`: one line per check, ✓ or ✗ with the fix; exit 1 if any ✗ (docs/operating.md#the-doctor).
    `--before-serve` (`make run`): a ✗ is shown but exits 0, and without the settings serve needs it says
    nothing, leaving serve to say what to set."""
    import doctor

    lang = settings.LANGUAGE
    if args.before_serve and any(getattr(settings, n) in (None, "") for n in serve_needs(settings)):
        return 0
    checks = doctor.run(settings)
    for check in checks:
        print(check.line(lang), flush=True)
    failed = sum(not c.ok for c in checks)
    if args.before_serve:
        if failed:
            print(t("doctor.serving_anyway", lang, n=failed), flush=True)
        return 0
    return 1 if failed else 0


def read_routing(settings: Settings, path: str | None = None):
    """The routing file (`path`, else ROUTING_FILE: read at start) read and checked; CommandError naming
    every mistake."""
    from blocks.routing import mistakes
    from models.routing import RoutingError, load

    lang = settings.LANGUAGE
    path = path or settings.ROUTING_FILE
    try:
        if path == settings.ROUTING_FILE:
            return settings.routing
        return load(path, settings.SLA_CLAIM_MINUTES, settings.SLA_CONTACT_MINUTES)
    except OSError as exc:
        raise CommandError(t("routing.unreadable", lang, path=path, error=exc.strerror or exc)) from None
    except RoutingError as exc:
        lines = mistakes(exc, lang)
        head = "routing.refused" if path == settings.ROUTING_FILE else "routing.check_refused"
        raise CommandError("\n".join([t(head, lang, path=path, n=len(lines)), *lines])) from None


def cmd_routing(settings: Settings, args) -> int:
    """`routing check [FILE]`: the file's mistakes (exit 2), or its teams and rules; `routing explain
    'LEAD-JSON'`: where that lead would go now and why, storing nothing (docs/routing.md)."""
    from blocks.routing import check_lines

    lang = settings.LANGUAGE
    words = args.words
    if words and words[0] == "explain" and len(words) == 2:
        return routing_explain(settings, words[1])
    if not words or words[0] != "check" or len(words) > 2:
        raise CommandError(t("routing.usage", lang))
    path = words[1] if len(words) == 2 else settings.ROUTING_FILE
    if not path:
        raise CommandError(t("routing.no_file", lang))
    for line in check_lines(read_routing(settings, path), lang):
        print(line)
    return 0


def routing_explain(settings: Settings, text: str) -> int:
    import json
    from datetime import UTC, datetime

    from blocks.routing import explain_lines
    from models.intake import explain
    from models.leads import Policy, parse_lead

    lang = settings.LANGUAGE
    if not settings.ROUTING_FILE:
        raise CommandError(t("routing.explain_no_file", lang))
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise CommandError(t("routing.not_json", lang, error=exc)) from None
    item, errors = parse_lead(obj, settings.tz)
    if errors:
        raise CommandError("; ".join(f"{e.field}: {t(e.key, lang, **e.params)}" for e in errors))
    policy = Policy.from_settings(settings)
    db = open_database(settings)
    with db.begin() as session:
        found = explain(session, item, policy, datetime.now(UTC))
    for line in explain_lines(found, item, settings, lang):
        print(line)
    return 0


def cmd_privacy(settings: Settings, args) -> int:
    """`privacy export EMAIL`, `privacy erase EMAIL | --external-id ID [--suppress] [--yes]`, `privacy log`
    (docs/privacy.md)."""
    from handlers.services import utcnow
    from models import privacy

    lang = settings.LANGUAGE
    words = list(args.words)
    verb = words.pop(0) if words else None
    if verb == "log" and not words:
        return _privacy_log(settings)
    if verb == "erase":
        return _privacy_erase(settings, words)
    if verb != "export" or len(words) != 1:
        raise CommandError(t("cli.privacy.usage", lang))
    _email_or_refuse(words[0], lang)
    db = open_database(settings)
    with db.begin() as session:
        document = privacy.export(session, words[0], utcnow())
    sys.stdout.buffer.write(json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
    sys.stdout.flush()
    return 0


def _email_or_refuse(value: str, lang: str) -> None:
    from models import privacy

    try:
        privacy.normalized(value)
    except privacy.NotAnEmail:
        raise CommandError(t("cli.privacy.not_an_email", lang, value=value)) from None


def _privacy_erase(settings: Settings, words: list[str]) -> int:
    """Erase one person (by email or external id) in one transaction; ask first on a terminal unless --yes."""
    from handlers.services import utcnow
    from models import privacy

    lang = settings.LANGUAGE
    flags = {w for w in words if w in ("--suppress", "--yes")}
    rest = [w for w in words if w not in flags]
    email = external_id = None
    if len(rest) == 2 and rest[0] == "--external-id" and rest[1].strip():
        external_id = rest[1]
    elif len(rest) == 1 and not rest[0].startswith("--"):
        email = rest[0]
        _email_or_refuse(email, lang)
    else:
        raise CommandError(t("cli.privacy.usage", lang))
    who = email if email is not None else f"external_id {external_id}"
    db = open_database(settings)
    if "--yes" not in flags and sys.stdin.isatty():
        with db.begin() as session:
            ids = privacy.leads_of(session, email=email, external_id=external_id if email is None else None)
        answer = input(t("cli.privacy.confirm", lang, who=who, n=len(ids), ids=_ids(ids))).strip().lower()
        if answer not in ("y", "yes", "はい"):
            print(t("cli.privacy.not_erased", lang))
            return 1
    done = db.transact(lambda session: privacy.erase_person(
        session, email=email, external_id=external_id, suppress_it="--suppress" in flags, how="cli", now=utcnow()))
    print(t("cli.privacy.erased", lang, n=len(done.lead_ids), ids=_ids(done.lead_ids)))
    if done.suppressed:
        print(t("cli.privacy.suppressed", lang))
    return 0


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids) or "-"


def _privacy_log(settings: Settings) -> int:
    """The erasures, newest first: when, how, how many leads and their ids; never an email."""
    from models import privacy
    from models.events import iso

    db = open_database(settings)
    with db.begin() as session:
        rows = privacy.erasures(session)
    if not rows:
        print(t("cli.privacy.log_empty", settings.LANGUAGE))
    for row in rows:
        print(t("cli.privacy.log_line", settings.LANGUAGE, at=iso(row.at), how=row.how, n=row.leads,
                ids=_ids(list(row.lead_ids or [])),
                suppressed=t("cli.privacy.log_suppressed", settings.LANGUAGE) if row.suppressed else ""))
    return 0


def cmd_demo(settings: Settings, args) -> int:
    from standin.demo import run_demo

    return run_demo(settings)


PRIVACY_USAGE = "bot.py privacy export EMAIL | privacy erase EMAIL | --external-id ID [--suppress] [--yes] | privacy log"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bot.py", description="Handoff: the marketing → sales lead handoff, on time.")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve HTTP (or Socket Mode) with the scheduler")
    sub.add_parser("clock", help="run the scheduler and the outbox alone")
    dl = sub.add_parser("deliver", help="run the outbox (and the scheduler unless SCHEDULER=off): serve starts it")
    dl.add_argument("--wake-fd", type=int, help="a pipe from serve: woken by each byte, stopped at its end")
    dl.add_argument("--ready-fd", type=int, help="a pipe to serve: one byte once sending")
    web = sub.add_parser("web", help="the pre-forked web processes: serve starts them when WEB_CONCURRENCY > 1")
    web.add_argument("--wake-fd", type=int, required=True, help="the delivery process's wake pipe, from serve")
    web.add_argument("--state", required=True, help="the file where serve keeps the delivery process's state")
    web.add_argument("--lifeline-fd", type=int, help="a pipe from serve: the web processes stop at its end")
    web.add_argument("--identity", default="{}", help="the bot token's auth.test answer (JSON), as serve checked it")
    rj = sub.add_parser("run-job", help="run one job once")
    rj.add_argument("name", help=" | ".join(JOBS))
    rj.add_argument("--at", help="act as if the clock read this ISO 8601 instant")
    rj.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for Slack (default 120)")
    im = sub.add_parser("import-leads", help="bulk import leads from CSV")
    im.add_argument("file")
    kp = sub.add_parser("kpi", help="the KPI report (docs/kpi.md)")
    kp.add_argument("kind", choices=("week", "month"))
    kp.add_argument("period", nargs="?", help="2026-W47 or 2026-11 (default: the one containing --at)")
    kp.add_argument("--at", help="the as-of instant, ISO 8601 (default now)")
    kp.add_argument("--format", choices=("text", "json", "csv"), default="text")
    kp.add_argument("--team", help="one team of ROUTING_FILE (docs/routing.md); default: every lead")
    ob = sub.add_parser("outbox", help="list the Slack messages not delivered, and send failed ones again",
                        usage="bot.py outbox list [--failed] [--limit N] | retry ID [ID …] | retry --all-failed")
    ob.add_argument("words", nargs=argparse.REMAINDER, metavar="list|retry …",
                    help="list: what is waiting or failed, newest first; retry ID…: put failed messages back "
                         "in the queue (as `outbox list` shows their ids)")
    ob.add_argument("--failed", action="store_true", help="list: only the messages Slack refused for good")
    ob.add_argument("--limit", help="list: at most N messages (default 50)")
    ob.add_argument("--all-failed", action="store_true", help="retry: every failed message")
    ev = sub.add_parser("events", help="list event deliveries, and send events again",
                        usage="bot.py events list [--failed] [--limit N] | "
                              "events replay --since ISO8601 [--type T] [--url URL]")
    ev.add_argument("words", nargs=argparse.REMAINDER, metavar="list|replay …",
                    help="list: deliveries newest first; replay: queue again the events since an instant")
    sub.add_parser("hubspot-setup", help="create the HubSpot contact properties Handoff writes (idempotent)")
    sub.add_parser("salesforce-setup", help="create the Salesforce fields and permission set Handoff writes with "
                                            "(idempotent)")
    sf = sub.add_parser("salesforce", help="where the Salesforce write-back stands", usage="bot.py salesforce status")
    sf.add_argument("words", nargs=argparse.REMAINDER, metavar="status")
    sub.add_parser("migrate", help="apply database migrations")
    dr = sub.add_parser("doctor", help="check the installation against Slack, the database, HubSpot, Salesforce and "
                                       "the endpoints")
    dr.add_argument("--before-serve", action="store_true", help="`make run`: show what fails, but exit 0")
    sub.add_parser("demo", help="the product offline against the local Slack stand-in")
    pv = sub.add_parser("privacy", help="export or erase everything held about a person (docs/privacy.md)",
                        usage=PRIVACY_USAGE)
    pv.add_argument("words", nargs=argparse.REMAINDER, metavar="export EMAIL | erase … | log")
    rt = sub.add_parser("routing", help="check a routing file, or see where a lead would go (docs/routing.md)",
                        usage="bot.py routing check [FILE] | routing explain 'LEAD-JSON'")
    rt.add_argument("words", nargs=argparse.REMAINDER, metavar="check [FILE] | explain 'LEAD-JSON'")
    return p


COMMANDS = {"serve": cmd_serve, "clock": cmd_clock, "deliver": cmd_deliver, "web": cmd_web,
            "run-job": cmd_run_job, "import-leads": cmd_import, "kpi": cmd_kpi,
            "outbox": cmd_outbox, "events": cmd_events, "hubspot-setup": cmd_hubspot_setup,
            "salesforce-setup": cmd_salesforce_setup, "salesforce": cmd_salesforce,
            "migrate": cmd_migrate, "demo": cmd_demo, "doctor": cmd_doctor, "routing": cmd_routing,
            "privacy": cmd_privacy}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logsafe.configure(logging.INFO)
    logging.getLogger("slack_bolt").setLevel(logging.WARNING)
    command = args.command or "serve"
    if command in ("kpi", "outbox", "events", "doctor", "routing", "salesforce", "privacy"):  # the output is the report: no migration chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        logs.configure(settings.LOG_FORMAT)  # text or JSON lines, with request ids (ops/logs.py)
        if settings.ROUTING_FILE and command not in ("routing", "doctor"):  # those say what is wrong themselves
            read_routing(settings)  # refused at start, every mistake named, rather than when a card goes astray
        return COMMANDS[command](settings, args)
    except (SettingsError, CommandError, StartupError) as exc:
        if command == "doctor" and isinstance(exc, SettingsError):  # a ✗ line like every other problem it finds
            if args.before_serve:
                return 0  # serve says it
            lang = os.environ.get("LANGUAGE", "").strip().lower()
            print("✗ " + t("doctor.settings_invalid", lang if lang in ("en", "ja") else "en", error=exc))
            return 1
        logs.fail(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
