"""`bot.py routing check` and a routing file read at start (docs/routing.md): a file with mistakes names each
with its line and stops every command before it does anything; a good one is listed team by team."""
from __future__ import annotations

from tests.models.test_routing_file import EXAMPLE
from tests.test_cli import run_bot

BAD = "teams:\n  A: {channel: X}\nrules:\n  - when: {score: 1}\n    team: b\n"


def test_check_lists_the_teams_and_rules_of_a_good_file(tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text(EXAMPLE, encoding="utf-8")
    res = run_bot("routing", "check", str(path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{path}: no mistakes; 2 teams, 3 rules"
    assert any(line.startswith("  inside-sales (インサイドセールス): channel C0ISALES") and
               line.endswith("SQLs handed to field-sales") for line in lines)
    assert "  1 (line 18): score >=90, attributes.employees >=1000 → field-sales (field-sales)" in lines
    assert "  3 (line 22): every lead → inside-sales (インサイドセールス)" in lines
    ja = run_bot("routing", "check", str(path), cwd=tmp_path, env_extra={"LANGUAGE": "ja"})
    assert ja.returncode == 0 and "  3(22 行目): すべてのリード → inside-sales(インサイドセールス)" in ja.stdout


def test_check_names_every_mistake_with_its_line(tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text(BAD, encoding="utf-8")
    res = run_bot("routing", "check", str(path), cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert f"{path}:2: team id `A` must be lower-case letters" in res.stderr
    assert f"{path}:2: channel `X` of team `A` does not look like a Slack channel id" in res.stderr
    assert f"{path}:4: no rule matches every lead" in res.stderr
    assert f"{path}:5: rule 1 names a team that does not exist: `b`" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_routing_file_with_mistakes_stops_every_command_at_start(db, tmp_path):
    path = tmp_path / "routing.yml"
    path.write_text(BAD, encoding="utf-8")
    env = {"DATABASE_URL": db.url, "ROUTING_FILE": str(path)}
    for command in (["kpi", "week"], ["migrate"], ["run-job", "sla-sweep"]):
        res = run_bot(*command, env_extra=env, cwd=tmp_path)
        assert res.returncode == 2, command
        assert res.stderr.startswith(f"error: ROUTING_FILE {path} has 4 mistake(s); nothing was started:\n")
        assert f"{path}:5: rule 1 names a team" in res.stderr
    missing = run_bot("kpi", "week", env_extra={**env, "ROUTING_FILE": str(tmp_path / "nope.yml")}, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == f"error: ROUTING_FILE {tmp_path / 'nope.yml'} cannot be read: No such file or directory\n"


def test_check_without_a_file_says_how_to_give_one(tmp_path):
    res = run_bot("routing", "check", cwd=tmp_path)
    assert res.returncode == 2 and "routing check FILE" in res.stderr
    assert run_bot("routing", cwd=tmp_path).stderr == "error: usage: bot.py routing check [FILE]\n"
