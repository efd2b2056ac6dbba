"""A local stand-in for the Slack Web API, shared by the tests, the demo and the benchmarks.

It answers the methods Handoff calls, records every call, and can be told to
misbehave: answer 429 with Retry-After or 500 a number of times, or enforce a
per-channel posting limit the way Slack does. Point SLACK_API_URL at `url`.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass
class Call:
    method: str
    params: dict
    at: float = field(default_factory=time.monotonic)
    status: int = 200


class _Bucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst, self.tokens, self.last = rate, float(burst), float(burst), time.monotonic()

    def take(self) -> float:
        """0 when allowed, else seconds until a token is free."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class SlackStandIn:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, on_call=None):
        self.calls: list[Call] = []
        self.rejected: list[Call] = []
        self.messages: dict[tuple[str, str], dict] = {}
        self.homes: dict[str, dict] = {}  # user id -> the App Home view last published
        self.uploads: dict[str, bytes] = {}  # file id -> the bytes posted to its upload URL
        self.files: list[dict] = []  # completed uploads: id, title, channel, initial_comment, bytes
        self.on_call = on_call
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._faults: list[tuple] = []  # (method, status, retry_after, error)
        self._limits: dict[str, _Bucket] = {}
        self._limit: tuple[float, int] | None = None
        self._slow: dict[str, float] = {}  # method -> seconds it takes to answer
        self._ts = itertools.count(1)
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # Life cycle -------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def start(self) -> "SlackStandIn":
        self._thread = threading.Thread(target=self.server.serve_forever, name="slack-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Misbehaving ------------------------------------------------------------
    def fail_next(self, times: int, status: int = 500, method: str | None = None,
                  retry_after: float | None = None, error: str | None = None) -> None:
        """The next `times` calls (of `method`, or any) answer `status` (with `error` if given)."""
        with self._lock:
            self._faults.extend([(method, status, retry_after, error)] * times)

    def slow_down(self, method: str, seconds: float) -> None:
        """Answer `method` only after `seconds` (a call is recorded when it is answered)."""
        with self._lock:
            self._slow[method] = seconds

    def limit_channel_posts(self, rate: float, burst: int) -> None:
        """Enforce a per-channel chat.postMessage limit, answering 429 with Retry-After beyond it."""
        with self._lock:
            self._limit = (rate, burst)
            self._limits.clear()

    # Reading what was sent --------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until predicate(calls) is true or the timeout passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.calls)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_calls(self, method: str, count: int, timeout: float = 10.0) -> list[Call]:
        self.wait_for(lambda calls: sum(c.method == method for c in calls) >= count, timeout)
        return self.calls_to(method)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.rejected.clear()
            self.homes.clear()
            self.uploads.clear()
            self.files.clear()
            self._faults.clear()
            self._slow.clear()
            self._limit = None
            self._limits.clear()

    # Answering --------------------------------------------------------------
    def _fault_for(self, method: str):
        with self._lock:
            for i, (m, status, retry_after, error) in enumerate(self._faults):
                if m is None or m == method:
                    del self._faults[i]
                    return status, retry_after, error
        return None

    def _rate_limited(self, method: str, params: dict) -> float:
        if method != "chat.postMessage":
            return 0.0
        with self._lock:
            if self._limit is None:
                return 0.0
            bucket = self._limits.setdefault(params.get("channel", ""), _Bucket(*self._limit))
            return bucket.take()

    def answer(self, method: str, params: dict, token: str | None) -> tuple[int, dict, dict]:
        fault = self._fault_for(method)
        if fault is not None:
            status, retry_after, error = fault
            headers = {"Retry-After": str(int(retry_after or 1))} if status == 429 else {}
            error = error or ("ratelimited" if status == 429 else "internal_error")
            return status, headers, {"ok": False, "error": error}
        wait = self._rate_limited(method, params)
        if wait > 0:
            return 429, {"Retry-After": str(max(1, round(wait)))}, {"ok": False, "error": "ratelimited"}
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(params)

    def _new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _m_auth_test(self, p):
        return {"ok": True, "url": "https://handoff-demo.slack.invalid/", "team": "Handoff Demo",
                "user": "handoff", "team_id": "T0DEMO", "user_id": "U0HANDOFF", "bot_id": "B0HANDOFF"}

    def _m_chat_postMessage(self, p):
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        ts = self._new_ts()
        msg = {"ts": ts, "text": p.get("text"), "blocks": p.get("blocks"), "thread_ts": p.get("thread_ts")}
        with self._lock:
            self.messages[(p["channel"], ts)] = msg
        return {"ok": True, "channel": p["channel"], "ts": ts, "message": msg}

    def _m_chat_update(self, p):
        key = (p.get("channel"), p.get("ts"))
        with self._lock:
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key].update(text=p.get("text"), blocks=p.get("blocks"))
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    def _m_chat_postEphemeral(self, p):
        if not p.get("channel") or not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._new_ts()}

    def _m_chat_getPermalink(self, p):
        ts = str(p.get("message_ts", "")).replace(".", "")
        return {"ok": True, "channel": p.get("channel"),
                "permalink": f"https://handoff-demo.slack.invalid/archives/{p.get('channel')}/p{ts}"}

    def _m_views_open(self, p):
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", **(p.get("view") or {})}}

    def _m_views_publish(self, p):
        view = p.get("view") or {}
        if not p.get("user_id") or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("blocks") or []) > 100:
            return {"ok": False, "error": "invalid_blocks"}
        with self._lock:
            self.homes[p["user_id"]] = view
        return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", **view}}

    def _m_files_getUploadURLExternal(self, p):
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        return {"ok": True, "file_id": file_id, "upload_url": self.url.replace("/api/", f"/upload/{file_id}")}

    def _m_files_completeUploadExternal(self, p):
        files = p.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        with self._lock:
            for f in files or []:
                if f.get("id") not in self.uploads:
                    return {"ok": False, "error": "file_not_found"}
                record = {"id": f["id"], "title": f.get("title"), "channel": p.get("channel_id"),
                          "initial_comment": p.get("initial_comment"), "bytes": self.uploads[f["id"]]}
                self.files.append(record)
                done.append({"id": f["id"], "title": f.get("title")})
        return {"ok": True, "files": done}

    def _m_conversations_open(self, p):
        users = p.get("users", "")
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0][1:]}}

    def _record(self, call: Call, rejected: bool) -> None:
        with self._cond:
            (self.rejected if rejected else self.calls).append(call)
            self._cond.notify_all()
        if self.on_call is not None and not rejected:
            self.on_call(call)

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _control(self) -> bool:
                """GET /_calls: what was recorded, for a stand-in running in another process."""
                if not self.path.startswith("/_calls"):
                    return False
                with standin._lock:
                    data = json.dumps({
                        "calls": [{"method": c.method, "params": c.params, "status": c.status} for c in standin.calls],
                        "rejected": [{"method": c.method, "status": c.status} for c in standin.rejected],
                    }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True

            def _upload(self, raw: bytes) -> bool:
                """The upload URL handed out by files.getUploadURLExternal: keep the bytes."""
                if not self.path.startswith("/upload/"):
                    return False
                with standin._lock:
                    standin.uploads[self.path.rsplit("/", 1)[-1]] = raw
                data = b"OK - " + str(len(raw)).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True

            def do_POST(self):
                if self._control():
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self._upload(raw):
                    return
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    params = json.loads(raw or b"{}")
                else:
                    params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
                    for k in ("blocks", "view", "attachments"):
                        if isinstance(params.get(k), str):
                            try:
                                params[k] = json.loads(params[k])
                            except ValueError:
                                pass
                method = self.path.rsplit("/", 1)[-1].split("?")[0]
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip() or params.get("token")
                with standin._lock:
                    slow = standin._slow.get(method, 0.0)
                if slow:
                    time.sleep(slow)
                status, headers, body = standin.answer(method, params, token)
                standin._record(Call(method, params, status=status), rejected=status != 200 or not body.get("ok"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        return Handler


def main(argv=None) -> int:
    """Run the stand-in on its own: `python -m standin.server --port 8099 [--limit 10:3]`."""
    import argparse

    p = argparse.ArgumentParser(description="Local Slack Web API stand-in")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--limit", help="RATE:BURST per-channel chat.postMessage limit, e.g. 10:3")
    args = p.parse_args(argv)
    standin = SlackStandIn(port=args.port)
    if args.limit:
        rate, burst = args.limit.split(":")
        standin.limit_channel_posts(float(rate), int(burst))
    print(standin.url, flush=True)
    try:
        standin.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
