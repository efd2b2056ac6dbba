"""What the benchmarks share: a served app, fresh databases, a filled database, the machine's name."""
from __future__ import annotations

import http.client
import json
import os
import platform
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text

from models.db import Database
from settings import normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
SECRET, HOOK, HANDOFF = "bench-secret", "bench-hook", "C0BENCH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db_url: str, api_url: str, **extra):
        self.port = free_port()
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": api_url, "DATABASE_URL": db_url, "HANDOFF_CHANNEL": HANDOFF,
               "MARKETING_CHANNEL": "C0MKT", "LEAD_WEBHOOK_TOKEN": HOOK, "SCHEDULER": "off",
               "PORT": str(self.port), **{k: str(v) for k, v in extra.items()}}
        self.proc = subprocess.Popen([sys.executable, "bot.py", "serve"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # up, and its delivery process sending (outbox/process.py)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as resp:
                    if json.loads(resp.read()).get("delivery_process") == "running":
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fresh_sqlite(tmp: Path, name: str) -> str:
    """An empty SQLite database at tmp/name: one left there by an earlier run of that name is removed."""
    for leftover in (tmp / name, tmp / f"{name}-wal", tmp / f"{name}-shm", tmp / f"{name}-writer"):
        leftover.unlink(missing_ok=True)
    return f"sqlite:///{tmp / name}"


def fresh_postgres(url: str) -> str:
    url = normalize_database_url(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else 0.0


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def revision(*paths: str) -> str:
    """The commit measured, and whether the code under `paths` (when none, all but the tests and docs) had changes
    not committed."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        code = paths or (".", ":!BENCHMARKS.md", ":!tests", ":!docs")
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *code], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    where = ", ".join(f"{p}/" for p in paths) if paths else "the code"
    return f"{head} with uncommitted changes to {where}" if dirty else head


def replace_section(text: str, lines: list[str]) -> str:
    """BENCHMARKS.md with this benchmark's section where the old one stood (at the end when there was none)."""
    title, section = lines[0], "\n".join(lines).rstrip("\n") + "\n"
    parts = text.rstrip("\n").split("\n## ")
    at = next((i for i, p in enumerate(parts) if i and "## " + p.split("\n", 1)[0] == title), None)
    if at is None:
        return "\n## ".join(parts) + "\n\n" + section
    parts[at] = section[len("## "):]
    return "\n## ".join(parts).rstrip("\n") + "\n"


def put_section(lines: list[str]) -> None:
    """Write one benchmark's section into BENCHMARKS.md in place of its last run (`replace_section`)."""
    bench_md = ROOT / "BENCHMARKS.md"
    bench_md.write_text(replace_section(bench_md.read_text() if bench_md.exists() else "# Benchmarks\n", lines))


def filled_database(db_url: str, total: int, fill) -> tuple[Database, float]:
    """Migrate `db_url`, run `fill(db, total)`; return the database and the seconds the fill took."""
    db = Database(db_url)
    db.migrate()
    started = time.perf_counter()
    fill(db, total)
    return db, time.perf_counter() - started


def run_clients(port: int, jobs: list[tuple[str, bytes, dict]], concurrency: int) -> list[tuple[float, int]]:
    """Send every (path, body, headers) with `concurrency` keep-alive clients; (seconds, status) each."""
    work: queue.Queue = queue.Queue()
    for job in jobs:
        work.put(job)
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while True:
            try:
                path, body, headers = work.get_nowait()
            except queue.Empty:
                break
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            mine.append((time.perf_counter() - started, resp.status))
        conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results
