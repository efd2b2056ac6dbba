"""`bot.py import-leads`, settings errors and the command line: one clear line, a non-zero exit."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from models.importer import ImportFailed, import_csv
from models.leads import Policy
from models.tables import Lead, OutboxMessage
from settings import SettingsError, load_settings
from tests.conftest import ROOT, make_settings

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
HEADER = "external_id,email,name,company,source,score,created_at,mql_at,claimed_at,claimed_by,lost_at,lost_reason\n"


def policy(settings):
    return Policy.from_settings(settings, post_cards=False)


@pytest.fixture
def settings(db, slack):
    return make_settings(db.url, slack.url)


def write(tmp_path, text, name="leads.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def leads(db):
    with db.begin() as s:
        return s.scalars(select(Lead).order_by(Lead.id)).all()


def test_import_is_validated_atomic_and_idempotent(db, settings, tmp_path):
    path = write(tmp_path, HEADER +
                 "crm-1,a@example.com,Aiko,Sato,webinar,80,2026-10-01T10:00:00,2026-10-01T10:05:00,"
                 "2026-10-01T10:30:00,UREP1,,\n"
                 "crm-2,b@example.com,Ben,Kogyo,ads,40,2026-10-02T10:00:00+09:00,,,,,\n"
                 ",c@example.com,,,,70,,2026-10-03T09:00:00Z,,,2026-10-05T09:00:00Z,budget\n")
    assert import_csv(db, path, policy(settings), settings.tz, NOW) == (3, 0)
    rows = leads(db)
    assert rows[0].mql_at.isoformat() == "2026-10-01T01:05:00+00:00"  # local time without an offset
    assert rows[0].claim_due.isoformat() == "2026-10-01T05:05:00+00:00"  # 240 business minutes later
    assert rows[0].claimed_by == "UREP1" and rows[1].mql_at is None and rows[2].lost_reason == "budget"
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0  # posts nothing
    assert import_csv(db, path, policy(settings), settings.tz, NOW) == (0, 3)
    assert len(leads(db)) == 3


def test_any_bad_row_imports_nothing_and_names_each_line(db, settings, tmp_path):
    path = write(tmp_path, HEADER +
                 "crm-1,a@example.com,,,,80,,,,,,\n"
                 "crm-2,not-an-email,,,,80,,,,,,\n"
                 "crm-3,c@example.com,,,,eighty,,,,,,\n"
                 "crm-4,d@example.com,,,,80,,2026-10-03T09:00:00,2026-10-02T09:00:00,someone,,\n")
    with pytest.raises(ImportFailed) as err:
        import_csv(db, path, policy(settings), settings.tz, NOW)
    problems = {(line, field) for line, field, _, _ in err.value.problems}
    assert problems == {(3, "email"), (4, "score"), (5, "claimed_at"), (5, "claimed_by")}
    assert leads(db) == []


def test_shift_jis_from_excel_is_read(db, settings, tmp_path):
    path = write(tmp_path, "email,score,company\nk@example.jp,70,佐藤工業\n", encoding="cp932")
    import_csv(db, path, policy(settings), settings.tz, NOW)
    assert leads(db)[0].company == "佐藤工業"


def run_bot(*args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HANDOFF_", "LEAD_"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "bot.py"), *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_import_reports_lines_and_exits_non_zero(db, tmp_path):
    path = write(tmp_path, "email,score,colour\nx@example.com,500,red\n")
    res = run_bot("import-leads", str(path), env_extra={"DATABASE_URL": db.url}, cwd=tmp_path)
    assert res.returncode != 0
    assert "line 1: colour" in res.stderr and "line 2: score" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("env, needle", [
    ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE is invalid"),
    ({"BUSINESS_HOURS": "18:00-09:00"}, "BUSINESS_HOURS is invalid"),
    ({"BUSINESS_DAYS": "weekdays"}, "BUSINESS_DAYS is invalid"),
    ({"MQL_SCORE_THRESHOLD": "high"}, "MQL_SCORE_THRESHOLD is invalid"),
    ({"LANGUAGE": "fr"}, "LANGUAGE is invalid"),
    ({"HOLIDAYS": "XX"}, "HOLIDAYS is invalid"),
    ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN is invalid"),
    ({"MANAGER_IDS": "alice"}, "MANAGER_IDS is invalid"),
    ({"PRIVACY_TOKEN": "short-token"}, "PRIVACY_TOKEN is invalid"),
    ({"PRIVACY_TOKEN": "t" * 40, "LEAD_WEBHOOK_TOKEN": "t" * 40}, "PRIVACY_TOKEN is the same as LEAD_WEBHOOK_TOKEN"),
    ({"RETENTION_DAYS": "-1"}, "RETENTION_DAYS is invalid"),
])
def test_bad_settings_stop_with_one_line(tmp_path, env, needle):
    res = run_bot("migrate", env_extra={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **env}, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and needle in res.stderr and "Traceback" not in res.stderr


def test_serve_without_tokens_says_what_to_set(tmp_path):
    res = run_bot("serve", env_extra={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert res.returncode == 2
    assert "SLACK_BOT_TOKEN" in res.stderr and "SLACK_SIGNING_SECRET" in res.stderr and "make demo" in res.stderr


def test_unreachable_database_is_one_line(tmp_path):
    res = run_bot("migrate", env_extra={"DATABASE_URL": "postgres://nobody:pw@127.0.0.1:1/none"}, cwd=tmp_path)
    assert res.returncode == 2 and "cannot reach the database" in res.stderr and "pw" not in res.stderr


def test_run_job_refuses_unknown_names_and_bad_instants(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "SLACK_BOT_TOKEN": "xoxb-x"}
    res = run_bot("run-job", "coffee", env_extra=env, cwd=tmp_path)
    assert res.returncode == 2 and "unknown job" in res.stderr
    res = run_bot("run-job", "outbox", "--at", "tomorrow-ish", env_extra=env, cwd=tmp_path)
    assert res.returncode == 2 and "--at" in res.stderr


def test_run_job_outbox_sends_what_is_queued(db, slack, tmp_path):
    from runtime import build_runtime

    rt = build_runtime(make_settings(db.url, slack.url), db=db)
    rt.http.test_client().post("/hooks/leads", json={"email": "q@example.com", "score": 90},
                               headers={"Authorization": "Bearer test-hook-token"})
    env = {"DATABASE_URL": db.url, "SLACK_BOT_TOKEN": "xoxb-x", "SLACK_API_URL": slack.url}
    res = run_bot("run-job", "outbox", env_extra=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "1 sent" in res.stdout
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_settings_defaults_and_postgres_urls():
    s = load_settings(_env_file=None, DATABASE_URL="postgres://u:p@h/db", MANAGER_IDS="U1AA, U2BB")
    assert s.DATABASE_URL == "postgresql+psycopg://u:p@h/db"
    assert s.MANAGER_IDS == ("U1AA", "U2BB") and s.MQL_SCORE_THRESHOLD == 60 and s.TIMEZONE == "Asia/Tokyo"
    assert s.business_days == frozenset(range(5)) and s.DIGEST_CHANNEL is None
    s = load_settings(_env_file=None, HANDOFF_CHANNEL="C1", BUSINESS_DAYS="sun-thu")
    assert s.DIGEST_CHANNEL == "C1" and s.business_days == frozenset({6, 0, 1, 2, 3})
    with pytest.raises(SettingsError):
        load_settings(_env_file=None, SLA_CLAIM_MINUTES="0")
