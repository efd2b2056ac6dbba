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
spread out (20 at once after a quiet spell, then one per 0.1 s), up to four batch writes in flight at once
(HubSpot takes a few hundred ms to answer one; a lead is in one of them, and each contact once). A 429
pauses the lane for the `Retry-After` HubSpot gives; without one (HubSpot sends none), until our window
frees up and at least half a second, doubling with each 429 in a row up to the window's 10 s, since 429s in
a row mean someone else spends the same allowance. 5xx, timeouts and lost connections pause it with backoff; a refused token, or a property HubSpot does not have (run
`bot.py hubspot-setup`), pauses it for 15 minutes. A batch HubSpot refuses for one lead's value is split down
to that lead, which is recorded with HubSpot's reason and written again at its next change.
"""
from __future__ import annotations

import collections
import json
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
from outbox.crm_lane import CrmLane

log = logging.getLogger("handoff.hubspot")

BATCH = 100  # inputs per batch call: HubSpot's maximum
RATE_REQUESTS, RATE_SECONDS = 100, 10.0  # a private app's rolling limit
TIMEOUT = 10.0
BURST = 20  # requests at once after a quiet spell (2,000 leads); then one per 0.1 s
IN_FLIGHT = 4  # batch writes at once: HubSpot answers in a few hundred ms, the limit allows one per 0.1 s
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
    """At most `requests` in any `seconds`, as HubSpot counts them; with `burst`, also spread out: at most
    `burst` at once, then one per `seconds / requests`.

    Spreading keeps a busy lane at the limit's rate whatever came before: a rolling window alone lets a
    burst through and then holds the next one back until the burst leaves the window, so a lane that sent
    its 100 requests in the first second of a backlog sends nothing for the next nine, and the backlog
    behind them waits on that shape over and over.

    A request is counted from the moment it is sent and, once answered, from its answer: HubSpot counts it
    when it arrives, which may be later than we sent it (several writes share the process), never later
    than its answer."""

    def __init__(self, requests: int = RATE_REQUESTS, seconds: float = RATE_SECONDS, burst: int | None = None,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.requests, self.seconds = requests, seconds
        self.burst = requests if burst is None else burst
        self.sent: collections.deque[list[float]] = collections.deque(maxlen=requests)  # [instant] per request
        self.monotonic, self.sleep = monotonic, sleep
        self._tokens, self._filled = float(self.burst), monotonic()
        self._lock = threading.Lock()  # the lane's writes share one window

    def _fill(self, now: float) -> float:
        return min(self.burst, self._tokens + (now - self._filled) * self.requests / self.seconds)

    def free_in(self) -> float:
        """Seconds until one more request may go."""
        now = self.monotonic()
        window = 0.0 if len(self.sent) < self.requests else min(e[0] for e in self.sent) + self.seconds + 0.02 - now
        tokens = self._fill(now)
        spread = 0.0 if tokens >= 1 else (1 - tokens) * self.seconds / self.requests
        return max(0.0, window, spread)

    def room(self) -> int:
        """How many requests may go now."""
        now = self.monotonic()
        in_window = sum(1 for e in self.sent if e[0] + self.seconds + 0.02 > now)
        return max(0, min(self.requests - in_window, int(self._fill(now))))

    def acquire(self) -> list[float]:
        """Wait until one more request may go; the request's entry, for `answered`."""
        with self._lock:  # waiting in turn keeps the requests of several writes within the limit together
            wait = self.free_in()
            if wait > 0:
                self.sleep(wait)
            now = self.monotonic()
            self._tokens, self._filled = max(0.0, self._fill(now) - 1), now
            entry = [now]
            self.sent.append(entry)
            return entry

    def answered(self, entry: list[float]) -> None:
        entry[0] = self.monotonic()


def make_client(token: str, base_url: str, timeout: float = TIMEOUT):
    """HubSpot's official client at `base_url`, with no retries of its own: retrying is this lane's job."""
    from hubspot import HubSpot

    return HubSpot(access_token=token, host=base_url.rstrip("/"),
                   retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False))


class HubSpotWriter(CrmLane):
    """The HubSpot lane."""

    name, label = "hubspot", "HubSpot"
    log = log

    def __init__(self, db: Database, destination_id: int, token: str, base_url: str, match: str,
                 now: Callable[[], datetime], limit: RollingLimit | None = None, timeout: float = TIMEOUT,
                 backoff_base: float = 5.0):
        self.db, self.destination_id, self.match, self.now = db, destination_id, match, now
        self.client = make_client(token, base_url, timeout)
        # One API object for the lane's life: each `client.crm.contacts.batch_api` is a new one, with a new
        # connection pool and a look-up of the package's version.
        self.batch_api = self.client.crm.contacts.batch_api
        self.limit = limit or RollingLimit(burst=BURST)
        self.timeout, self.backoff_base = timeout, backoff_base
        super().__init__(IN_FLIGHT - 1)
        self._failures = 0  # consecutive transient failures, for the backoff
        self._throttled = 0  # consecutive 429s, for theirs

    def _due(self, session, until: datetime) -> int:
        return crm_sync.due_by(session, self.destination_id, until)

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
    def _model(self, cls, **values):
        """A request model of the client on the lane's configuration (without one, each model copies the
        client's default configuration, which cost more than sending the batch)."""
        return cls(local_vars_configuration=self.batch_api.api_client.configuration, **values)

    def _call(self, fn, **kwargs) -> dict:
        """One request within the rate limit, its answer's JSON; HubSpot's trouble becomes Paused or Refused.

        The answer is read as JSON rather than as the client's models: building those (and parsing every
        record's dates) cost more than the rest of a write."""
        from hubspot.crm.contacts.exceptions import ApiException

        entry = self.limit.acquire()
        paused = self.paused_until - time.monotonic()
        if paused > 0:  # another write of this pass was just told to wait: so is this one
            raise Paused(paused, "waiting for HubSpot", counted=False)
        try:
            answer = fn(_request_timeout=self.timeout, _preload_content=False, **kwargs)
            try:
                result = json.loads(answer.data or b"{}")
            finally:
                answer.release_conn()
        except ApiException as exc:
            raise self._trouble(exc.status, exc.headers or {}, exc.body) from None
        except (TransportError, OSError, ValueError) as exc:
            raise self._transient(f"connection: {_one_line(exc)}") from None
        finally:
            self.limit.answered(entry)
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

    def _hold(self, taken: list[crm_sync.Taken], pause: Paused, everything: bool = True) -> None:
        """The leased rows go back, due when the pause ends; with `everything`, the whole lane waits too."""
        if everything:
            self.paused_until = max(self.paused_until, time.monotonic() + pause.seconds)
        now = self.now()
        with self.db.begin() as s:
            crm_sync.retry(s, self.destination_id, [t.lead.id for t in taken], now + timedelta(seconds=pause.seconds),
                           pause.error[:MAX_ERROR], now, count=pause.counted)

    # 1. Finding contacts --------------------------------------------------------------
    def _lookup(self) -> bool:
        limit = BATCH if self.match == "email" else 1000
        with self.db.begin() as s:
            taken = crm_sync.take(s, self.destination_id, "lookup", self.now(), limit)
        if not taken:
            return False
        if self.match == "external_id":
            ids = {t.lead.id: (t.lead.external_id or "").strip() for t in taken}
            now = self.now()
            with self.db.begin() as s:
                crm_sync.found_many(s, self.destination_id, [(i, ext, None) for i, ext in ids.items() if ext.isdigit()],
                                    now)
                crm_sync.not_found_many(s, self.destination_id, [i for i, ext in ids.items() if not ext.isdigit()],
                                        "external_id is not a HubSpot record id", now)
            return True
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        emails = sorted({t.lead.email_norm for t in taken})
        request = self._model(BatchReadInputSimplePublicObjectId, id_property="email",
                              properties=["email", "lifecyclestage"],
                              inputs=[self._model(SimplePublicObjectId, id=e) for e in emails])
        try:
            answer = self._call(self.batch_api.read,
                                batch_read_input_simple_public_object_id=request)
        except Paused as pause:
            self._hold(taken, pause)
            return False
        except Refused as refused:
            self._hold(taken, Paused(SETUP_PAUSE, str(refused), counted=True))
            log.error("HubSpot refused a contact lookup: %s", refused)
            return False
        by_email = {}
        for result in answer.get("results") or []:
            props = result.get("properties") or {}
            by_email[(props.get("email") or "").strip().lower()] = (str(result["id"]), props.get("lifecyclestage"))
        now = self.now()
        with self.db.begin() as s:
            crm_sync.found_many(s, self.destination_id, [(t.lead.id, *by_email[t.lead.email_norm]) for t in taken
                                                         if t.lead.email_norm in by_email], now)
            crm_sync.not_found_many(s, self.destination_id,
                                    [t.lead.id for t in taken if t.lead.email_norm not in by_email],
                                    "no HubSpot contact with this email", now)
        return True

    # 2. Writing -------------------------------------------------------------------------
    def _write(self) -> bool:
        """Write the due leads: as many batches at once as the window has room for (at least one, which
        waits for room), each lead in one of them, each contact once."""
        batches = max(1, min(IN_FLIGHT, self.limit.room()))
        with self.db.begin() as s:
            taken = crm_sync.take(s, self.destination_id, "ready", self.now(), BATCH * batches)
        if not taken:
            return False
        going, later = [], []
        seen: set[str] = set()
        for t in taken:  # HubSpot refuses a batch naming one record twice: the second waits for the next pass
            (later if t.record_id in seen else going).append(t)
            seen.add(t.record_id)
        if later:
            self._hold(later, Paused(0.0, "same contact as another lead in this batch", counted=False),
                       everything=False)
        parts = [going[i:i + BATCH] for i in range(0, len(going), BATCH)]
        # In order per lead: a lead is in one batch, and its next change is taken only once this one settled.
        pending = [self._pool.submit(self._write_batch, part) for part in parts[1:]]
        wrote = self._write_batch(parts[0])
        for future in pending:
            wrote = future.result() or wrote
        return wrote

    def _write_batch(self, batch: list[crm_sync.Taken]) -> bool:
        try:
            stages = self._stages(batch)
        except Paused as pause:
            self._hold(batch, pause)
            return False
        except Refused as refused:  # reading stages by record id: nothing of ours can be wrong in it
            log.error("HubSpot refused to read the lifecycle stage of %d contacts: %s; they wait 15 minutes",
                      len(batch), refused)
            self._hold(batch, Paused(SETUP_PAUSE, str(refused), counted=True), everything=False)
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
        results = {str(r["id"]): r for r in answer.get("results") or []}
        missing = set()
        for error in answer.get("errors") or []:
            if error.get("category") == "OBJECT_NOT_FOUND":
                missing.update(str(i) for i in ((error.get("context") or {}).get("ids") or []))
        done, unknown = [], []
        for record_id, (t, props) in inputs.items():
            if record_id in missing or record_id not in results:
                unknown.append(t.lead.id)
                continue
            echoed = results[record_id].get("properties") or {}
            stage = echoed.get("lifecyclestage") or props.get("lifecyclestage") or stages.get(record_id,
                                                                                                 t.remote_stage)
            # What this contact was last told, property by property: a property left out of this write (the
            # lifecycle stage once it is as far as it goes) keeps its earlier value (the no-echo rule of
            # docs/crm-status.md compares a HubSpot body with these).
            done.append((t.lead.id, t.want, {**(t.sent or {}), **props}, stage))
        now = self.now()
        with self.db.begin() as s:
            crm_sync.not_found_many(s, self.destination_id, unknown, "HubSpot has no contact with this id", now)
            crm_sync.written_many(s, self.destination_id, done, now)
        return True

    def _stages(self, batch: list[crm_sync.Taken]) -> dict[str, str | None]:
        """The lifecycle stage HubSpot holds now, read just before a write that would move it forward."""
        ids = [t.record_id for t in batch
               if (stage := mapping.stage_wanted(t.lead)) and mapping.moves_forward(stage, t.remote_stage)]
        if not ids:
            return {}
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        request = self._model(BatchReadInputSimplePublicObjectId, properties=["lifecyclestage"],
                              inputs=[self._model(SimplePublicObjectId, id=i) for i in ids])
        answer = self._call(self.batch_api.read,
                            batch_read_input_simple_public_object_id=request)
        return {str(r["id"]): (r.get("properties") or {}).get("lifecyclestage") for r in answer.get("results") or []}

    def _update(self, inputs: dict[str, tuple[crm_sync.Taken, dict]]):
        from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

        request = self._model(BatchInputSimplePublicObjectBatchInput, inputs=[
            self._model(SimplePublicObjectBatchInput, id=record_id, properties=props)
            for record_id, (_, props) in inputs.items()])
        return self._call(self.batch_api.update,
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
