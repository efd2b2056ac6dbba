"""KPI formulas (docs/kpi.md) on hand-built data with hand-computed answers, and against an
independent plain-Python computation over a generated history of 50,000 leads."""
from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from models.kpi import PeriodError, band_of, compute, month, parse_period, week
from models.tables import Lead
from tests.conftest import JST, ROOT, TOKYO_CLOCK, add_lead, jst

W48 = week(2026, 48, JST)  # Mon 23 Nov (a JP holiday) to Mon 30 Nov 2026, Tokyo


def report(db, period=W48, at=None):
    with db.begin() as s:
        return compute(s, period, at or jst(2026, 12, 10, 12), TOKYO_CLOCK)


# Periods ---------------------------------------------------------------------
def test_periods_are_local_and_half_open():
    assert W48.start == jst(2026, 11, 23) and W48.end == jst(2026, 11, 30)
    assert parse_period("week", None, jst(2026, 11, 29, 23, 59, 59), JST) == W48
    assert parse_period("week", None, jst(2026, 11, 30, 0, 0), JST).label == "2026-W49"
    assert parse_period("week", "2026-w48", jst(2020, 1, 1), JST) == W48
    nov = parse_period("month", "2026-11", jst(2020, 1, 1), JST)
    assert (nov.start, nov.end) == (jst(2026, 11, 1), jst(2026, 12, 1))
    assert month(2026, 12, JST).end == jst(2027, 1, 1)
    assert W48.previous(JST).label == "2026-W47" and nov.previous(JST).label == "2026-10"
    assert week(2026, 53, JST).label == "2026-W53"  # 2026 has 53 ISO weeks
    for kind, text in (("week", "2026-W54"), ("week", "2026-11"), ("month", "2026-13"), ("month", "26-1")):
        with pytest.raises(PeriodError):
            parse_period(kind, text, jst(2026, 1, 1), JST)


def test_score_bands():
    assert [band_of(s) for s in (60, 69, 70, 99, 100)] == ["60-69", "60-69", "70-79", "90-99", "90-99"]


# Formulas on hand-built data ----------------------------------------------------------
def test_an_empty_period_gives_zeros_and_nulls(db):
    r = report(db)
    assert r["mqls"] == 0 and r["claimed"] == 0
    for key in ("claim_sla_rate", "median_claim_minutes", "contact_sla_rate", "mql_to_sql_rate", "sql_to_won_rate"):
        assert r[key] is None
    assert r["by_source"] == {} and r["by_rep"] == {} and r["score_bands"] == {} and r["lost_reasons"] == {}


def test_the_week_boundary_in_local_time(db):
    add_lead(db, mql=jst(2026, 11, 29, 23, 59, 59))  # Sunday night: week 48
    add_lead(db, mql=jst(2026, 11, 30, 0, 0, 0))     # Monday 00:00: week 49
    add_lead(db, mql=jst(2026, 11, 23, 0, 0, 0))     # Monday 00:00: week 48
    add_lead(db, mql=jst(2026, 11, 22, 23, 59, 59))  # week 47
    assert report(db)["mqls"] == 2 and report(db, W48.next(JST))["mqls"] == 1


def test_every_formula_by_hand(db):
    # Tuesday 24 Nov 10:00 (23rd is a holiday): claim_due 14:00, contact_due Wed 25 Nov 10:00
    a = jst(2026, 11, 24, 10)
    add_lead(db, mql=a, score=85, source="webinar", claimed_at=jst(2026, 11, 24, 10, 30), claimed_by="U1",
        contacted_at=jst(2026, 11, 24, 12), sql_at=jst(2026, 11, 26, 10), won_at=jst(2026, 12, 3, 10))
    # claimed late: Tue 17:00 is 7 business hours after 10:00 (420 min); contacted late; lost
    add_lead(db, mql=a, score=64, source="webinar", claimed_at=jst(2026, 11, 24, 17), claimed_by="U2",
        contacted_at=jst(2026, 11, 25, 11), lost_at=jst(2026, 11, 27, 15), lost_reason="budget")
    # MQL Friday 17:30, claimed Monday 09:30: 30 + 30 business minutes = 60
    add_lead(db, mql=jst(2026, 11, 27, 17, 30), score=100, source="ads", claimed_at=jst(2026, 11, 30, 9, 30),
        claimed_by="U1")
    # never claimed, deadline passed: counts in the claim-SLA denominator and as overdue
    add_lead(db, mql=jst(2026, 11, 25, 9), score=72, source="ads")
    # disqualified from the card on Thursday
    add_lead(db, mql=jst(2026, 11, 26, 9), score=61, source="ads", claimed_at=jst(2026, 11, 26, 9, 15), claimed_by="U2",
        disqualified_at=jst(2026, 11, 26, 9, 15), disqualify_reason="student_personal")
    add_lead(db, score=20, created=jst(2026, 11, 25, 12))  # a lead that never became an MQL

    r = report(db)
    assert r["leads"] == 6 and r["mqls"] == 5
    assert r["claimed"] == 4 and r["claimed_in_sla"] == 3
    assert r["claim_sla_rate"] == round(3 / 5, 4)  # claimed (4) + unclaimed past its deadline (1)
    assert r["median_claim_minutes"] == 45.0  # 15, 30, 60, 420 business minutes → (30 + 60) / 2
    assert r["contacted"] == 2 and r["contacted_in_sla"] == 1
    # the denominator: contacted (2) + contact_due passed by A (the other three)
    assert r["contact_sla_rate"] == round(1 / 5, 4)
    assert r["sqls"] == 1 and r["mql_to_sql_rate"] == 0.2 and r["won"] == 1 and r["sql_to_won_rate"] == 1.0
    assert r["overdue_unclaimed"] == 1
    assert r["lost_reasons"] == {"budget": 1} and r["disqualify_reasons"] == {"student_personal": 1}
    assert r["by_source"] == {"ads": {"mqls": 3, "sqls": 0, "mql_to_sql_rate": 0.0},
                              "webinar": {"mqls": 2, "sqls": 1, "mql_to_sql_rate": 0.5}}
    assert r["by_rep"] == {"U1": {"claimed": 2, "claimed_in_sla": 2, "median_claim_minutes": 45.0},
                           "U2": {"claimed": 2, "claimed_in_sla": 1, "median_claim_minutes": 217.5}}
    assert r["score_bands"] == {"60-69": {"mqls": 2, "sqls": 0, "mql_to_sql_rate": 0.0},
                                "70-79": {"mqls": 1, "sqls": 0, "mql_to_sql_rate": 0.0},
                                "80-89": {"mqls": 1, "sqls": 1, "mql_to_sql_rate": 1.0},
                                "90-99": {"mqls": 1, "sqls": 0, "mql_to_sql_rate": 0.0}}


def test_the_as_of_rule(db):
    a = jst(2026, 11, 24, 10)
    add_lead(db, mql=a, claimed_at=jst(2026, 11, 24, 11), claimed_by="U1", sql_at=jst(2026, 12, 2, 10))
    add_lead(db, mql=jst(2026, 11, 27, 10))
    early = report(db, at=jst(2026, 11, 24, 10, 30))  # before the claim, before the second MQL
    assert early["mqls"] == 1 and early["claimed"] == 0 and early["claim_sla_rate"] is None  # due 14:00, not yet
    assert early["overdue_unclaimed"] == 0
    mid = report(db, at=jst(2026, 11, 27, 16))
    assert mid["mqls"] == 2 and mid["claimed"] == 1 and mid["sqls"] == 0 and mid["claim_sla_rate"] == 0.5
    assert mid["overdue_unclaimed"] == 1  # the second is past its 14:00 deadline
    late = report(db, at=jst(2026, 12, 5, 10))
    assert late["sqls"] == 1 and late["mql_to_sql_rate"] == 0.5
    assert report(db, at=jst(2026, 11, 27, 16)) == mid  # reproducible


def test_medians_count_business_time_only(db):
    # Friday 20 Nov 17:00 → Tuesday 24 Nov 10:00: 60 min Friday, the weekend and the holiday Monday
    # are not counted, 60 min Tuesday = 120 business minutes
    add_lead(db, mql=jst(2026, 11, 20, 17), claimed_at=jst(2026, 11, 24, 10), claimed_by="U1")
    r = report(db, week(2026, 47, JST))
    assert r["median_claim_minutes"] == 120.0 and r["claimed_in_sla"] == 1


# Against an independent computation ----------------------------------------------------
def reference(leads: list[dict], start: datetime, end: datetime, A: datetime) -> dict:
    """The formulas of docs/kpi.md, literally, in plain Python (and the loop-based business clock)."""
    def by(v):
        return v is not None and v <= A

    def r4(n, d):
        return None if not d else round(n / d, 4)

    def med(xs):
        return None if not xs else round(statistics.median(xs), 1)

    C = [x for x in leads if x["mql_at"] is not None and start <= x["mql_at"] < end and x["mql_at"] <= A]
    claimed = [x for x in C if by(x["claimed_at"])]
    in_sla = [x for x in claimed if x["claimed_at"] <= x["claim_due"]]
    contacted = [x for x in C if by(x["contacted_at"])]
    c_in_sla = [x for x in contacted if x["contacted_at"] <= x["contact_due"]]
    sqls = [x for x in C if by(x["sql_at"])]
    won = [x for x in C if by(x["won_at"])]
    minutes = {id(x): TOKYO_CLOCK.minutes_between(x["mql_at"], x["claimed_at"]) for x in claimed}
    out = {
        "leads": sum(1 for x in leads if start <= x["created_at"] < end and x["created_at"] <= A),
        "mqls": len(C), "claimed": len(claimed), "claimed_in_sla": len(in_sla),
        "claim_sla_rate": r4(len(in_sla), sum(1 for x in C if by(x["claimed_at"]) or x["claim_due"] <= A)),
        "median_claim_minutes": med(list(minutes.values())),
        "contacted": len(contacted), "contacted_in_sla": len(c_in_sla),
        "contact_sla_rate": r4(len(c_in_sla), sum(1 for x in C if by(x["contacted_at"]) or x["contact_due"] <= A)),
        "sqls": len(sqls), "mql_to_sql_rate": r4(len(sqls), len(C)), "won": len(won),
        "sql_to_won_rate": r4(len(won), len(sqls)),
        "overdue_unclaimed": sum(1 for x in leads if x["mql_at"] is not None and x["mql_at"] <= A
                                 and not by(x["claimed_at"]) and not by(x["lost_at"])
                                 and not by(x["disqualified_at"]) and x["claim_due"] <= A),
    }
    for col, reason, key in (("lost_at", "lost_reason", "lost_reasons"),
                             ("disqualified_at", "disqualify_reason", "disqualify_reasons")):
        counts: dict = {}
        for x in leads:
            if x[col] is not None and start <= x[col] < end and x[col] <= A:
                counts[x[reason]] = counts.get(x[reason], 0) + 1
        out[key] = counts
    src: dict = {}
    for x in C:
        s = src.setdefault(x["source"], {"mqls": 0, "sqls": 0})
        s["mqls"] += 1
        s["sqls"] += by(x["sql_at"])
    out["by_source"] = {k: {**v, "mql_to_sql_rate": r4(v["sqls"], v["mqls"])} for k, v in src.items()}
    reps: dict = {}
    for x in claimed:
        e = reps.setdefault(x["claimed_by"], {"claimed": 0, "claimed_in_sla": 0, "m": []})
        e["claimed"] += 1
        e["claimed_in_sla"] += x["claimed_at"] <= x["claim_due"]
        e["m"].append(minutes[id(x)])
    out["by_rep"] = {k: {"claimed": v["claimed"], "claimed_in_sla": v["claimed_in_sla"],
                         "median_claim_minutes": med(v["m"])} for k, v in reps.items()}
    bands: dict = {}
    for x in C:
        b = bands.setdefault(band_of(x["score"]), {"mqls": 0, "sqls": 0})
        b["mqls"] += 1
        b["sqls"] += by(x["sql_at"])
    out["score_bands"] = {k: {**v, "mql_to_sql_rate": r4(v["sqls"], v["mqls"])} for k, v in bands.items()}
    return out


def history(n: int, seed: int = 11) -> list[dict]:
    """Leads over 2025-12 … 2026-12 with every kind of path, stamps in and out of business hours."""
    rng = random.Random(seed)
    origin = jst(2025, 12, 1)
    reasons = ["budget", "timing", "no_need", "competitor", "other"]
    out = []
    for i in range(n):
        created = origin + timedelta(minutes=rng.randint(0, 60 * 24 * 395))
        score = rng.randint(0, 100)
        lead = dict(email=f"h{i}@example.com", email_norm=f"h{i}@example.com", source=rng.choice(
            ["webinar", "ads", "organic", "event", "partner"]), score=score, attributes={}, created_at=created,
            updated_at=created, mql_at=None, claim_due=None, contact_due=None, claimed_at=None, claimed_by=None,
            contacted_at=None, sql_at=None, won_at=None, lost_at=None, lost_reason=None, disqualified_at=None,
            disqualify_reason=None)
        if score >= 60:
            mql = created + timedelta(minutes=rng.choice([0, 0, 5, 600]))
            lead.update(mql_at=mql, claim_due=TOKYO_CLOCK.add_minutes(mql, 240), contact_due=TOKYO_CLOCK.add_minutes(mql, 540))
            t = mql
            if rng.random() < 0.85:
                t = t + timedelta(minutes=rng.expovariate(1 / 300))
                lead.update(claimed_at=t, claimed_by=rng.choice(["U1", "U2", "U3", "U4"]))
                if rng.random() < 0.1:
                    lead.update(disqualified_at=t, disqualify_reason=rng.choice(["spam", "duplicate", "other"]))
                elif rng.random() < 0.8:
                    t = t + timedelta(minutes=rng.expovariate(1 / 600))
                    lead["contacted_at"] = t
                    if rng.random() < 0.4:
                        t = t + timedelta(days=rng.random() * 10)
                        lead["sql_at"] = t
                        if rng.random() < 0.3:
                            lead["won_at"] = t + timedelta(days=rng.random() * 30)
                        elif rng.random() < 0.5:
                            lead.update(lost_at=t + timedelta(days=rng.random() * 30),
                                        lost_reason=rng.choice(reasons))
                    elif rng.random() < 0.3:
                        lead.update(lost_at=t + timedelta(days=rng.random() * 5), lost_reason=rng.choice(reasons))
        out.append(lead)
    return out


def test_kpi_json_equals_the_reference_on_50000_leads(db, tmp_path):
    leads = history(50_000)
    with db.engine.begin() as conn:
        for i in range(0, len(leads), 5000):
            conn.execute(Lead.__table__.insert(), leads[i:i + 5000])
    checks = [("week", "2026-W48", jst(2026, 12, 10, 12)), ("month", "2026-11", jst(2026, 12, 10, 12)),
              ("month", "2026-03", jst(2026, 3, 20, 15, 7)), ("week", "2026-W01", jst(2026, 1, 3, 23, 59, 59)),
              ("month", "2026-06", jst(2026, 12, 31))]
    for kind, label, at in checks:
        period = parse_period(kind, label, at, JST)
        with db.begin() as s:
            got = compute(s, period, at, TOKYO_CLOCK)
        want = reference(leads, period.start, period.end, at)
        for key, value in want.items():
            assert got[key] == value, (label, key)
    # and the command line prints the same object, with the keys of docs/kpi.md exactly
    env = {"DATABASE_URL": db.url, "PATH": "/usr/bin:/bin", "TIMEZONE": "Asia/Tokyo"}
    out = subprocess.run([sys.executable, "bot.py", "kpi", "month", "2026-11", "--at", "2026-12-10T12:00:00+09:00",
                          "--format", "json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    with db.begin() as s:
        assert printed == compute(s, parse_period("month", "2026-11", jst(2026, 12, 10, 12), JST),
                                  jst(2026, 12, 10, 12), TOKYO_CLOCK)
    assert set(printed) == {"period", "start", "end", "as_of", "leads", "mqls", "claimed", "claimed_in_sla",
                            "claim_sla_rate", "median_claim_minutes", "contacted", "contacted_in_sla",
                            "contact_sla_rate", "sqls", "mql_to_sql_rate", "won", "sql_to_won_rate",
                            "overdue_unclaimed", "lost_reasons", "disqualify_reasons", "by_source", "by_rep",
                            "score_bands"}
    assert printed["as_of"] == "2026-12-10T12:00:00+09:00"


def test_kpi_cli_text_csv_and_bad_period(db):
    add_lead(db, mql=jst(2026, 11, 24, 10), claimed_at=jst(2026, 11, 24, 10, 30), claimed_by="U1")
    env = {"DATABASE_URL": db.url, "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run([sys.executable, "bot.py", "kpi", *a], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=120)
    text = run("week", "2026-W48", "--at", "2026-12-01T00:00:00+09:00")
    assert text.returncode == 0 and "MQLs 1" in text.stdout and "@U1" in text.stdout
    csv_out = run("week", "2026-W48", "--at", "2026-12-01T00:00:00+09:00", "--format", "csv")
    assert "mqls,,,1" in csv_out.stdout and "by_rep,U1,claimed,1" in csv_out.stdout
    bad = run("week", "2026-W60")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: `2026-W60` is not a week")
