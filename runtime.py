"""The wiring of a serving process: settings, the database, the services, Bolt, Flask, the sender, the jobs.

Built the same way by `bot.py serve`, the offline demo and the tests, so what they run is what production runs.
See docs/README.md for the map of the tree and docs/operating.md for running it.
"""
from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from blocks.texts import t
from settings import Settings

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler
    from flask import Flask
    from slack_bolt import App
    from waitress.server import BaseWSGIServer, MultiSocketServer

    from handlers.http import ListenerPool
    from handlers.services import Services
    from models.db import Database
    from outbox.process import DeliveryProcess

log = logging.getLogger("handoff")


class StartupError(Exception):
    """The process cannot start (the database or Slack refused); the message is one line for the user."""


@dataclass
class Runtime:
    """Everything a serving process holds, built the same way for serve, the demo and the tests."""

    settings: Settings
    db: Database
    services: Services
    bolt: App | None  # None without SLACK_BOT_TOKEN (the webhook and the jobs still run)
    http: Flask | None  # the WSGI app: /slack/events, /hooks/leads, /healthz (None in the delivery process)
    listeners: ListenerPool | None = None  # acknowledged Slack work still running
    stop: threading.Event | None = None  # set by start_background: ends the sender
    scheduler: BaseScheduler | None = None  # the APScheduler started by start_background, if any
    delivery: DeliveryProcess | None = None  # serve's delivery process, started by start_delivery_process
    slack_identity: dict | None = None  # the bot token's auth.test answer, when it was checked

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every acknowledged Slack request has finished its work (deploys, the demo): the clicks
        written down and, where this process applies them (start_background), applied."""
        deadline = time.monotonic() + timeout
        if self.listeners is not None and not self.listeners.wait_idle(timeout):
            return False
        clicks = self.services.clicks
        if self.stop is None or clicks is None:  # applied elsewhere (serve's delivery process), or by no one yet
            return True
        try:
            return clicks.drain(max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # the database is away: the clicks wait in their table for the next process
            log.warning("clicks not applied before stopping: %s", type(exc).__name__)
            return False

    def make_server(self, host: str = "0.0.0.0", port: int | None = None,
                    sockets: list | None = None) -> BaseWSGIServer | MultiSocketServer:
        """The production WSGI server for the app, bound (or on the listening `sockets` a pre-fork master
        made: prefork.py) but not yet running."""
        return waitress_server(self.http, host=host, port=self.settings.PORT if port is None else port,
                               sockets=sockets)

    def start_http(self, host: str = "0.0.0.0", port: int | None = None) -> BaseWSGIServer | MultiSocketServer:
        """Serve in a background thread; returns the server (see its `effective_port`)."""
        server = self.make_server(host, port)

        def run():
            try:
                server.run()
            except OSError as exc:  # server.close() from another thread ends the loop's select this way
                if exc.errno != errno.EBADF:
                    raise
        threading.Thread(target=run, name="http", daemon=True).start()
        return server

    def start_background(self, stop: threading.Event, scheduler: bool | None = None) -> BaseScheduler | None:
        from jobs.scheduler import start_background

        self.stop = stop
        self.scheduler = start_background(self.services, stop,
                                          self.settings.SCHEDULER == "on" if scheduler is None else scheduler)
        return self.scheduler

    def start_delivery_process(self) -> DeliveryProcess:
        """`serve`: deliveries and jobs run in a second process, woken after each commit (outbox/process.py)."""
        from outbox.process import DeliveryProcess

        self.delivery = self.services.delivery = DeliveryProcess().start()
        return self.delivery

    def shutdown(self, timeout: float = 25.0) -> None:
        """A graceful stop (SIGTERM on deploy): finish what was acknowledged, the running job and the send in
        flight, then return. What is still queued stays in the outbox for the next process."""
        waiting = self.listeners.in_flight if self.listeners is not None else 0
        if waiting:
            log.info("stopping: finishing %d acknowledged Slack request(s)", waiting)
        if not self.settle(timeout):
            log.warning("stopping with Slack work still running after %.0f s", timeout)
        if self.delivery is not None:  # after the listeners: what they queued is woken for before it stops
            self.delivery.stop(timeout)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        if self.stop is not None:
            self.stop.set()
            self.services.notify()
            sender = self.services.sender
            if sender is not None and sender.thread is not None:
                sender.thread.join(timeout)
            for lane in self.services.lanes:
                lane.join(timeout)
            if self.services.clicks is not None:
                self.services.clicks.join(timeout)


def waitress_server(app, host: str = "0.0.0.0", port: int = 0,
                    sockets: list | None = None) -> BaseWSGIServer | MultiSocketServer:
    """waitress for `app`, with Handoff's limits: bound to host and port, or on `sockets`; not yet running.

    Waitress buffers each request in its async loop before a worker thread sees it, so slow or huge
    requests cost connections and memory, not threads: the limits below bound both (docs/failures.md).
    """
    import resource

    from waitress.server import create_server

    from handlers.webhook import MAX_BODY

    # 200 connections dripping their headers exhausted waitress's default 100 and queued every real click.
    CONNECTION_LIMIT = 1000
    # A body past this much waits in a temporary file, not memory: 200 stalled 500 KB bodies held 111 MB.
    INBUF_OVERFLOW = 64 * 1024
    # Per connection a socket and perhaps that temporary file, plus the database, logs and trigger.
    FILES_NEEDED = 2 * CONNECTION_LIMIT + 256
    # Refused from Content-Length (413) or after this many chunked bytes, before the app reads any of it;
    # the margin leaves the webhook's own JSON 413 for bodies just over its 1 MiB.
    MAX_REQUEST_BODY = MAX_BODY + 64 * 1024
    # Slack's and marketing tools' headers are a few KiB; 32 KiB is nginx's default total.
    MAX_REQUEST_HEADER = 32 * 1024

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < FILES_NEEDED:  # a 1024 default would refuse accept()
        wanted = FILES_NEEDED if hard == resource.RLIM_INFINITY else min(FILES_NEEDED, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    where = {"sockets": sockets} if sockets else {"host": host, "port": port}
    return create_server(app, **where, threads=16, ident="handoff", channel_timeout=30,
                         clear_untrusted_proxy_headers=True, connection_limit=CONNECTION_LIMIT,
                         max_request_body_size=MAX_REQUEST_BODY, max_request_header_size=MAX_REQUEST_HEADER,
                         inbuf_overflow=INBUF_OVERFLOW,
                         asyncore_use_poll=True)  # select() cannot watch a socket numbered 1024 or more


def quiet_garbage_collector() -> None:
    """Keep the collector's pauses out of the time Slack waits for an answer, and out of the senders' passes.

    What was built at start (Bolt, SQLAlchemy, the catalog) lives as long as the process: moving it out of
    the collector's sight (`gc.freeze`) and collecting young objects less often halves the p99 of a click
    under load (BENCHMARKS.md). The web processes, the delivery process and a clock do it once started: a CRM
    lane's pass makes tens of thousands of short-lived objects (the rows it leases and settles), and each full
    collection would walk everything built at start. Reference counting still frees almost everything at
    once; only cycles wait.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def open_database(settings: Settings) -> Database:
    from sqlalchemy.exc import SQLAlchemyError

    from models.db import Database

    try:
        db = Database(settings.DATABASE_URL, wait_seconds=settings.DATABASE_WAIT_SECONDS)
        db.migrate()
    except SQLAlchemyError as exc:
        from sqlalchemy.engine import make_url

        url = make_url(settings.DATABASE_URL).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StartupError(t("cli.db_unreachable", settings.LANGUAGE, url=url, error=reason)) from None
    return db


def salesforce_writer(settings: Settings, db, destination_id: int, now: Callable[[], datetime]):
    """The Salesforce lane of these settings (docs/salesforce.md)."""
    from outbox.salesforce import Connection, Owners, SalesforceWriter, slack_emails

    connection = Connection(settings.SALESFORCE_LOGIN_URL, settings.SALESFORCE_CLIENT_ID,
                            settings.SALESFORCE_CLIENT_SECRET, settings.SALESFORCE_API_BUDGET)
    return SalesforceWriter(db, destination_id, connection, settings.SALESFORCE_MATCH, settings.SALESFORCE_STATUS_MAP,
                            Owners(slack_emails(settings)), settings.LANGUAGE, settings.tz, now=now)


def build_runtime(settings: Settings, db: Database | None = None, now: Callable[[], datetime] | None = None,
                  verify_token: bool = True, reconcile: bool = True, web: bool = True,
                  slack_identity: dict | None = None) -> Runtime:
    """`verify_token`: check the bot token with `auth.test` now (a one-line error if Slack refuses it), unless
    `slack_identity` is that answer already (a pre-forked web worker is given `serve`'s, prefork.py).
    `reconcile`: this process owns where changes go (serve, clock): the endpoints and CRMs in the database
    become those of its settings. A one-off command leaves them as they are (docs/events.md).
    `web`: build Bolt and the WSGI app; the delivery process only sends (outbox/process.py)."""
    from handlers.actions import click_work
    from handlers.clicks import ClickQueue
    from handlers.http import ListenerPool, build_bolt_app, build_flask_app
    from handlers.services import Services, utcnow
    from models import crm_sync, events
    from outbox.events import EventSender
    from outbox.hubspot import HubSpotWriter
    from outbox.sender import Sender, make_client

    db = db or open_database(settings)
    now = now or utcnow
    with db.begin() as session:  # where changes go besides Slack, as this process was started with
        destinations = events.configure(session, settings.EVENT_WEBHOOK_URLS, now(), reconcile)
        hubspot_id = crm_sync.configure(session, crm_sync.HUBSPOT,
                                        settings.HUBSPOT_API_URL if settings.HUBSPOT_TOKEN else None, now(), reconcile)
        salesforce_id = crm_sync.configure(session, crm_sync.SALESFORCE, settings.SALESFORCE_LOGIN_URL, now(),
                                           reconcile)
    hubspot = None if hubspot_id is None else HubSpotWriter(
        db, hubspot_id, settings.HUBSPOT_TOKEN, settings.HUBSPOT_API_URL, settings.HUBSPOT_MATCH, now=now)
    services = Services(settings=settings, db=db, now=now, sender=Sender(db, settings, now=now),
                        events=EventSender(db, destinations, settings.EVENT_WEBHOOK_SECRET, now=now),
                        hubspot=hubspot,
                        salesforce=None if salesforce_id is None else salesforce_writer(settings, db, salesforce_id,
                                                                                         now))
    services.clicks = ClickQueue(services, click_work(services))
    bolt = listeners = None
    if not web:
        return Runtime(settings, db, services, None, None)
    if settings.SLACK_BOT_TOKEN:
        listeners = ListenerPool(max_workers=8)
        if verify_token and slack_identity is None:
            try:
                slack_identity = make_client(settings).auth_test().data
            except Exception as exc:  # auth.test failed: a bad token or no route to Slack
                raise StartupError(t("cli.token_refused", settings.LANGUAGE, url=settings.SLACK_API_URL,
                                     error=exc)) from None
        bolt = build_bolt_app(services, slack_identity, listeners=listeners)
    http = build_flask_app(services, None if settings.socket_mode else bolt)
    return Runtime(settings, db, services, bolt, http, listeners, slack_identity=slack_identity)
