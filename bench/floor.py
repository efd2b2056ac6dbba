"""The floor for a claim click: the least an app on Handoff's stack can do for one.

    python -m bench.floor --port P --database URL --slack-api-url URL [--workers N]

Bolt verifies the signature and routes the `lead_claim` action; the listener acknowledges and records the
claim with one conditional UPDATE (an owner only if there is none) before the answer; served like `serve`
(prefork.py: gunicorn's master with waitress workers, the same limits, N workers). No request
dedupe, card update, refusal, events or SLA: whatever Handoff spends beyond this is Handoff's.
`bench/run.py` measures it side by side with Handoff.
"""
from __future__ import annotations

import argparse
import os
import sys

from gunicorn.app.base import BaseApplication
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, update

from bench.common import SECRET
from settings import normalize_database_url

CARDS = Table("floor_cards", MetaData(), Column("id", Integer, primary_key=True), Column("owner", String(32)))


def prepare(url: str, cards: int) -> None:
    engine = create_engine(normalize_database_url(url))
    CARDS.metadata.drop_all(engine)
    CARDS.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(CARDS), [{"id": i, "owner": None} for i in range(1, cards + 1)])
    engine.dispose()


def build(url: str, slack_api_url: str):
    from flask import Flask, request
    from slack_bolt import App
    from slack_bolt.adapter.flask import SlackRequestHandler
    from slack_sdk import WebClient

    engine = create_engine(normalize_database_url(url), pool_size=20, max_overflow=20)
    # Bolt set up as Handoff's (handlers/http.py): the token in a client, the answer after the listener
    bolt = App(signing_secret=SECRET, client=WebClient(token="xoxb-floor", base_url=slack_api_url),
               token_verification_enabled=False, process_before_response=True)

    @bolt.action("lead_claim")
    def claim(ack, body, action):
        ack()
        with engine.begin() as conn:
            conn.execute(update(CARDS).where(CARDS.c.id == int(action["value"]), CARDS.c.owner.is_(None))
                         .values(owner=body["user"]["id"]))

    web = Flask("floor")
    handler = SlackRequestHandler(bolt)
    web.add_url_rule("/slack/events", "slack_events", lambda: handler.handle(request), methods=["POST"])
    web.add_url_rule("/healthz", "healthz", lambda: "ok")
    return web


class Floor(BaseApplication):
    def __init__(self, url: str, slack_api_url: str, port: int, workers: int):
        self.url, self.slack_api_url, self.port, self.workers = url, slack_api_url, port, workers
        super().__init__()

    def load_config(self) -> None:
        for key, value in {"bind": [f"127.0.0.1:{self.port}"], "workers": self.workers,
                           "worker_class": "prefork.WaitressWorker", "loglevel": "warning"}.items():
            self.cfg.set(key, value)

    def load(self):
        return build(self.url, self.slack_api_url)

    def make_server(self, sockets: list):
        from runtime import waitress_server

        return waitress_server(self.wsgi(), sockets=sockets)

    def shutdown(self) -> None:
        pass


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--database", required=True)
    p.add_argument("--slack-api-url", required=True, help="the Slack stand-in (Bolt asks auth.test once)")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    os.environ.pop("WEB_CONCURRENCY", None)  # gunicorn reads it; the workers are given
    Floor(args.database, args.slack_api_url, args.port, args.workers).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
