"""Storage: the migrations match the models; health; two senders never send a row twice."""
from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from models.tables import MIGRATION_ONLY_INDEXES, Base, declared
from outbox.sender import Sender
from tests.conftest import make_settings


def test_migrations_match_the_models(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_object": declared}), Base.metadata)
        assert diff == []
        names = {index["name"] for index in inspect(conn).get_indexes("leads")}
    assert MIGRATION_ONLY_INDEXES <= names or db.engine.dialect.name == "sqlite"  # SQLite does not reflect them


def test_healthz(app, db):
    status, body = app.request("/healthz", method="GET")
    assert status == 200 and body["ok"] is True and body["outbox_pending"] == 0


def test_healthz_is_503_when_the_database_is_gone(slack, tmp_path):
    from models.db import Database
    from runtime import build_runtime

    database = Database(f"sqlite:///{tmp_path}/gone.db")
    database.migrate()
    rt = build_runtime(make_settings(database.url, slack.url), db=database)
    (tmp_path / "gone.db").unlink()
    database.dispose()
    (tmp_path / "gone.db").mkdir()  # a directory where the file was: SQLite cannot open it
    r = rt.http.test_client().get("/healthz")
    assert r.status_code == 503 and r.json["ok"] is False


def test_two_senders_send_each_row_once(db, slack):
    """Two processes draining the same outbox (here two senders on two engines) never double a message."""
    from models.db import Database
    from runtime import build_runtime

    settings = make_settings(db.url, slack.url)
    rt = build_runtime(settings, db=db)
    client = rt.http.test_client()
    body = {"leads": [{"email": f"s{i}@example.com", "score": 90} for i in range(60)]}
    assert client.post("/hooks/leads", json=body, headers={"Authorization": "Bearer test-hook-token"}).status_code == 201
    other = Database(db.url)
    senders = [Sender(db, settings), Sender(other, settings)]
    threads = [threading.Thread(target=s.drain, args=(30,)) for s in senders]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    posts = slack.calls_to("chat.postMessage")
    values = [b["elements"][0]["value"] for c in posts for b in c.params["blocks"] if b["type"] == "actions"]
    assert len(values) == 60 and len(set(values)) == 60
    other.dispose()
