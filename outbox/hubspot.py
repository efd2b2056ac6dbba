"""HubSpot write-back: each changed lead's latest state, written to its contact in batches (docs/hubspot.md).

One lane (a thread) for HubSpot, apart from Slack and the event endpoints, so HubSpot being slow, down or
rate limiting delays nothing else. Each pass:

1. finds the contacts of leads not matched yet: with HUBSPOT_MATCH=email, one batch read by email for up to
   100 leads (`POST /crm/v3/objects/contacts/batch/read`, idProperty=email, which also returns the
   lifecycle stage); with external_id, the lead's external_id is the record id. A lead HubSpot does not know
   is recorded and skipped until its next change;
2. writes up to 100 leads by record id (`POST /crm/v3/objects/contacts/batch/update`), each as it is at that
   moment, so many changes of one lead become one write of its latest state. Before a write that would move
   the lifecycle stage it reads the stage HubSpot holds, so the stage only ever moves forward.

Calls go through HubSpot's official client, at most 100 requests in any 10 seconds (a private app's limit),
and a 429 pauses the lane for the `Retry-After` HubSpot gives; without one (HubSpot sends none), until our
window frees up and at least half a second, doubling with each 429 in a row up to the window's 10 s, since
429s in a row mean someone else spends the same allowance. 5xx, timeouts
and lost connections pause it with backoff; a refused token, or a property HubSpot does not have (run
`bot.py hubspot-setup`), pauses it for 15 minutes. A batch HubSpot refuses for one lead's value is split down
to that lead, which is recorded with HubSpot's reason and written again at its next change.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from urllib3.exceptions import HTTPError as TransportError
from urllib3.util.retry import Retry

from models import crm_sync
from models import hubspot as mapping
from models.db import Database

log = logging.getLogger("handoff.hubspot")

BATCH = 100  # inputs per batch call: HubSpot's maximum
RATE_REQUESTS, RATE_SECONDS = 100, 10.0  # a private app's rolling limit
TIMEOUT = 10.0
MAX_BACKOFF = 300.0
SETUP_PAUSE = 900.0  # a refused token: an admin must act; look again every 15 minutes
DAILY_PAUSE = 3600.0  # the daily request allowance is spent: look again every hour
THROTTLE_PAUSE = 0.5  # the least wait after a ten-secondly 429, doubled for each one in a row
MAX_ERROR = 1000


class Paused(Exception):
    """HubSpot cannot take requests now: everything waits `seconds`."""

    def __init__(self, seconds: float, error: str, counted: bool):
        super().__init__(error)
        self.seconds, self.error, self.counted = seconds, error, counted


class Refused(Exception):
    """HubSpot refused this batch as invalid (HTTP 400)."""


class RollingLimit:
    """At most `requests` in any `seconds`, as HubSpot counts them."""

    def __init__(self, requests: int = RATE_REQUESTS, seconds: float = RATE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.requests, self.seconds = requests, seconds
        self.sent: collections.deque[float] = collections.deque(maxlen=requests)
        self.monotonic, self.sleep = monotonic, sleep

    def free_in(self) -> float:
        """Seconds until one more request fits in the window."""
        if len(self.sent) < self.requests:
            return 0.0
        return max(0.0, self.sent[0] + self.seconds + 0.02 - self.monotonic())  # a little margin for transit

    def acquire(self) -> None:
        wait = self.free_in()
        if wait > 0:
            self.sleep(wait)
        self.sent.append(self.monotonic())


def make_client(token: str, base_url: str, timeout: float = TIMEOUT):
    """HubSpot's official client at `base_url`, with no retries of its own: retrying is this lane's job."""
    from hubspot import HubSpot

    return HubSpot(access_token=token, host=base_url.rstrip("/"),
                   retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False))


class HubSpotWriter:
    """The HubSpot lane."""

    def __init__(self, db: Database, destination_id: int, token: str, base_url: str, match: str,
                 now: Callable[[], datetime], limit: RollingLimit | None = None, timeout: float = TIMEOUT,
                 backoff_base: float = 5.0):
        self.db, self.destination_id, self.match, self.now = db, destination_id, match, now
        self.client = make_client(token, base_url, timeout)
        self.limit = limit or RollingLimit()
        self.timeout, self.backoff_base = timeout, backoff_base
        self.wake = threading.Event()
        self.paused_until = 0.0  # monotonic
        self._failures = 0  # consecutive transient failures, for the backoff
        self._throttled = 0  # consecutive 429s, for theirs
        self._pass_lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.requests = 0  # made by this process, for the benchmark

    # Running ----------------------------------------------------------------------
    def notify(self) -> None:
        self.wake.set()

    def start(self, stop: threading.Event) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, args=(stop,), name="hubspot", daemon=True)
        self.thread.start()
        return self.thread

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wait = self.run_pass()
            except Exception:  # the database may be away for a moment; the lane must not die
                log.exception("HubSpot pass failed; trying again")
                wait = 5.0
            if wait > 0:
                self.wake.wait(wait)
            self.wake.clear()

    def run_pass(self) -> float:
        with self._pass_lock:
            return self._run_pass()

    def drain(self, until: datetime, timeout: float) -> int:
        """Write until nothing due by `until` is left (or `timeout` passed); what is still due."""
        deadline = time.monotonic() + timeout
        while True:
            self.paused_until = 0.0
            wait = self.run_pass()
            with self.db.begin() as s:
                left = crm_sync.due_by(s, self.destination_id, until)
            if left == 0 or time.monotonic() >= deadline:
                return left
            time.sleep(min(max(wait, 0.02), 1.0))

    def _run_pass(self) -> float:
        paused = self.paused_until - time.monotonic()
        if paused > 0:
            return paused
        busy = self._lookup() | self._write()
        if busy:
            return 0.0
        with self.db.begin() as s:
            upcoming = crm_sync.next_due(s, self.destination_id)
        if upcoming is None:
            return 5.0
        return min(5.0, max(0.0, (upcoming - self.now()).total_seconds()))

    # Calling HubSpot ----------------------------------------------------------------
    def _call(self, fn, *args, **kwargs):
        """One request within the rate limit; HubSpot's trouble becomes Paused or Refused."""
        from hubspot.crm.contacts.exceptions import ApiException

        self.limit.acquire()
        self.requests += 1
        try:
            result = fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise self._trouble(exc.status, exc.headers or {}, exc.body) from None
        except (TransportError, OSError) as exc:
            raise self._transient(f"connection: {_one_line(exc)}") from None
        self._failures = self._throttled = 0
        return result

    def _trouble(self, status: int, headers, body) -> Exception:
        text = _one_line(body if isinstance(body, str) else (body or b"").decode("utf-8", "replace"))
        if status == 429:
            retry_after = _seconds(headers.get("Retry-After"))
            if retry_after is not None:
                wait = retry_after
            elif "DAILY" in text:  # the day's allowance is spent: asking every second would not bring it back
                wait = DAILY_PAUSE
            else:  # our window counts the refused request too
                self._throttled += 1
                backoff = min(self.limit.seconds, THROTTLE_PAUSE * 2 ** min(self._throttled - 1, 10))
                wait = max(backoff, self.limit.free_in())
            log.warning("HubSpot rate limit reached; writes wait %.1f s", wait)
            return Paused(wait, f"HTTP 429: {text}", counted=False)
        if status in (401, 403):
            log.error("HubSpot refused HUBSPOT_TOKEN (HTTP %s): %s; writes wait 15 minutes", status, text)
            return Paused(SETUP_PAUSE, f"HTTP {status}: {text}", counted=True)
        if status >= 500 or status in (408, 0):
            return self._transient(f"HTTP {status}: {text}")
        return Refused(f"HTTP {status}: {text}")

    def _transient(self, error: str) -> Paused:
        self._failures += 1
        wait = min(MAX_BACKOFF, self.backoff_base * 2 ** min(self._failures - 1, 10))
        log.warning("HubSpot unavailable (%s); writes wait %.0f s", error, wait)
        return Paused(wait, error, counted=True)

    def _hold(self, taken: list[crm_sync.Taken], pause: Paused) -> None:
        """Everything waits: the leased rows go back, due when the pause ends."""
        self.paused_until = time.monotonic() + pause.seconds
        now = self.now()
        with self.db.begin() as s:
            for t in taken:
                crm_sync.retry(s, self.destination_id, t.lead.id, now + timedelta(seconds=pause.seconds),
                               pause.error[:MAX_ERROR], now, count=pause.counted)

    # 1. Finding contacts --------------------------------------------------------------
    def _lookup(self) -> bool:
        limit = BATCH if self.match == "email" else 1000
        with self.db.begin() as s:
            taken = crm_sync.take(s, self.destination_id, "lookup", self.now(), limit)
        if not taken:
            return False
        if self.match == "external_id":
            now = self.now()
            with self.db.begin() as s:
                for t in taken:
                    ext = (t.lead.external_id or "").strip()
                    if ext.isdigit():
                        crm_sync.found(s, self.destination_id, t.lead.id, ext, None, now)
                    else:
                        crm_sync.not_found(s, self.destination_id, t.lead.id,
                                           "external_id is not a HubSpot record id", now)
            return True
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        emails = sorted({t.lead.email_norm for t in taken})
        request = BatchReadInputSimplePublicObjectId(
            id_property="email", properties=["email", "lifecyclestage"],
            inputs=[SimplePublicObjectId(id=e) for e in emails])
        try:
            answer = self._call(self.client.crm.contacts.batch_api.read,
                                batch_read_input_simple_public_object_id=request)
        except Paused as pause:
            self._hold(taken, pause)
            return False
        except Refused as refused:
            self._hold(taken, Paused(SETUP_PAUSE, str(refused), counted=True))
            log.error("HubSpot refused a contact lookup: %s", refused)
            return False
        by_email = {}
        for result in answer.results or []:
            props = result.properties or {}
            by_email[(props.get("email") or "").strip().lower()] = (result.id, props.get("lifecyclestage"))
        now = self.now()
        with self.db.begin() as s:
            for t in taken:
                hit = by_email.get(t.lead.email_norm)
                if hit is None:
                    crm_sync.not_found(s, self.destination_id, t.lead.id, "no HubSpot contact with this email", now)
                else:
                    crm_sync.found(s, self.destination_id, t.lead.id, str(hit[0]), hit[1], now)
        return True

    # 2. Writing -------------------------------------------------------------------------
    def _write(self) -> bool:
        with self.db.begin() as s:
            taken = crm_sync.take(s, self.destination_id, "ready", self.now(), BATCH)
        if not taken:
            return False
        batch, later = [], []
        seen: set[str] = set()
        for t in taken:  # HubSpot refuses a batch naming one record twice: the second waits for the next pass
            (later if t.record_id in seen else batch).append(t)
            seen.add(t.record_id)
        if later:
            self._hold(later, Paused(0.0, "same contact as another lead in this batch", counted=False))
            self.paused_until = 0.0
        try:
            stages = self._stages(batch)
        except Paused as pause:
            self._hold(batch, pause)
            return False
        except Refused as refused:  # reading stages by record id: nothing of ours can be wrong in it
            log.error("HubSpot refused to read the lifecycle stage of %d contacts: %s; they wait 15 minutes",
                      len(batch), refused)
            self._hold(batch, Paused(SETUP_PAUSE, str(refused), counted=True))
            self.paused_until = 0.0  # other leads may still go
            return False
        inputs = {t.record_id: (t, mapping.properties(t.lead, stages.get(t.record_id, t.remote_stage)))
                  for t in batch}
        return self._write_inputs(inputs, stages)

    def _write_inputs(self, inputs: dict[str, tuple[crm_sync.Taken, dict]], stages: dict) -> bool:
        """One batch update. When HubSpot refuses the batch as invalid (one value it will not take refuses all
        of them), each half is written on its own, down to the one refused contact, which is recorded with
        HubSpot's reason and not tried again until the lead's next change."""
        try:
            answer = self._update(inputs)
        except Paused as pause:
            self._hold([t for t, _ in inputs.values()], pause)
            return False
        except Refused as refused:
            if "PROPERTY_DOESNT_EXIST" in str(refused):  # not one lead's value: the portal lacks our properties
                log.error("HubSpot has no handoff properties yet: run `python bot.py hubspot-setup`; writes wait "
                          "15 minutes (%s)", refused)
                self._hold([t for t, _ in inputs.values()], Paused(SETUP_PAUSE, str(refused), counted=True))
                return False
            if len(inputs) > 1:
                items = list(inputs.items())
                half = len(items) // 2
                wrote = self._write_inputs(dict(items[:half]), stages)
                return self._write_inputs(dict(items[half:]), stages) or wrote
            (t, props), = inputs.values()
            log.error("HubSpot refused the update of lead %s's contact: %s", t.lead.id, refused)
            with self.db.begin() as s:
                crm_sync.refused(s, self.destination_id, t.lead.id, str(refused)[:MAX_ERROR], self.now())
            return True
        results = {str(r.id): r for r in answer.results or []}
        missing = set()
        for error in getattr(answer, "errors", None) or []:
            if getattr(error, "category", None) == "OBJECT_NOT_FOUND":
                missing.update(str(i) for i in ((error.context or {}).get("ids") or []))
        now = self.now()
        with self.db.begin() as s:
            for record_id, (t, props) in inputs.items():
                if record_id in missing or record_id not in results:
                    crm_sync.not_found(s, self.destination_id, t.lead.id, "HubSpot has no contact with this id", now)
                    continue
                echoed = results[record_id].properties or {}
                stage = echoed.get("lifecyclestage") or props.get("lifecyclestage") or stages.get(record_id,
                                                                                                     t.remote_stage)
                crm_sync.written(s, self.destination_id, t.lead.id, t.want, props, stage, now)
        return True

    def _stages(self, batch: list[crm_sync.Taken]) -> dict[str, str | None]:
        """The lifecycle stage HubSpot holds now, read just before a write that would move it forward."""
        ids = [t.record_id for t in batch
               if (stage := mapping.stage_wanted(t.lead)) and mapping.moves_forward(stage, t.remote_stage)]
        if not ids:
            return {}
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        request = BatchReadInputSimplePublicObjectId(properties=["lifecyclestage"],
                                                     inputs=[SimplePublicObjectId(id=i) for i in ids])
        answer = self._call(self.client.crm.contacts.batch_api.read,
                            batch_read_input_simple_public_object_id=request)
        return {str(r.id): (r.properties or {}).get("lifecyclestage") for r in answer.results or []}

    def _update(self, inputs: dict[str, tuple[crm_sync.Taken, dict]]):
        from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

        request = BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=record_id, properties=props)
                    for record_id, (_, props) in inputs.items()])
        return self._call(self.client.crm.contacts.batch_api.update,
                          batch_input_simple_public_object_batch_input=request)


def setup(client, timeout: float = TIMEOUT) -> list[tuple[str, bool]]:
    """Create the `handoff` property group and the `handoff_*` contact properties; what exists is left alone.

    Returns (name, created) for the group and each property. Raises SetupError with HubSpot's answer when a
    call is refused for another reason than "already exists"."""
    from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyGroupCreate
    from hubspot.crm.properties.exceptions import ApiException

    done = []

    def create(name: str, call) -> None:
        try:
            call()
            done.append((name, True))
        except ApiException as exc:
            if exc.status != 409:  # 409: it exists already (created before, or by hand)
                raise SetupError(name, exc.status, _one_line(exc.body or exc.reason)) from None
            done.append((name, False))

    group = mapping.GROUP
    create(group["name"], lambda: client.crm.properties.groups_api.create(
        object_type="contacts", _request_timeout=timeout, property_group_create=PropertyGroupCreate(
            name=group["name"], label=group["label"], display_order=group["displayOrder"])))
    for prop in mapping.PROPERTIES:
        options = [OptionInput(label=o["label"], value=o["value"], display_order=o["displayOrder"], hidden=False)
                   for o in prop.get("options", [])]
        create(prop["name"], lambda p=prop, o=options: client.crm.properties.core_api.create(
            object_type="contacts", _request_timeout=timeout, property_create=PropertyCreate(
                name=p["name"], label=p["label"], type=p["type"], field_type=p["fieldType"],
                group_name=p["groupName"], options=o or None)))
    return done


class SetupError(Exception):
    def __init__(self, name: str, status: int, detail: str):
        super().__init__(f"{name}: HTTP {status}: {detail}")
        self.name, self.status, self.detail = name, status, detail


def _seconds(value) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _one_line(value) -> str:
    return " ".join(str(value).split())[:MAX_ERROR]
