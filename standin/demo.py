"""`make demo`: the product offline against the local Slack stand-in, every message printed."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from blocks.format import local_time
from blocks.ids import ActionId, BlockId, CallbackId
from blocks.texts import t
from outbox.hubspot import make_client as make_hubspot_client
from outbox.hubspot import setup as setup_hubspot
from outbox.salesforce import Connection as SalesforceConnection
from outbox.salesforce import setup as setup_salesforce
from runtime import build_runtime
from standin import slack_requests
from standin.clock import FakeClock
from standin.hubspot import HubSpotStandIn
from standin.receiver import WebhookReceiver
from standin.render import render_blocks, render_call
from standin.salesforce import SalesforceStandIn
from standin.server import SlackStandIn

OUT = Path("demo-output")
SECRET = "demo-signing-secret"
HOOK = "demo-hook-token"
EVENT_SECRET = "whsec_ZGVtby1ldmVudC1zZWNyZXQtb2YtMzItYnl0ZXMhISE="  # the demo receiver's key (32 bytes)
HANDOFF, MARKETING = "C0HANDOFF", "C0MARKETING"
MANAGER, AIKO, KEN = "U0MANAGER", "U0AIKO", "U0KEN"

LEADS = [
    {"external_id": "hs-1001", "email": "sato@sato-kogyo.example", "name": "佐藤 愛子", "company": "佐藤工業株式会社",
     "title": "情報システム部 部長", "score": 82, "source": "webinar",
     "attributes": {"webinar": "DX最前線 2026-11", "visited": "pricing page ×3"}},
    {"external_id": "hs-1002", "email": "j.doe@acme.example", "name": "Jane Doe", "company": "ACME Corp",
     "title": "VP Sales", "score": 91, "source": "paid_search", "attributes": {"downloaded": "ROI calculator"}},
    {"external_id": "hs-1003", "email": "student@uni.example", "name": "Taro", "company": "<!channel> *Free* <https://x.test|click>",
     "score": 64, "source": "organic"},
    {"external_id": "hs-1004", "email": "lurker@globex.example", "name": "Hank", "company": "Globex", "score": 35,
     "source": "event"},
]


def workflow_body(lead: dict, crm: HubSpotStandIn) -> dict:
    """The lead as HubSpot's workflow webhook sends its contact: every property as {"value": …}, as strings."""
    contact = crm.contact_by_email(lead["email"])
    first, _, last = lead["name"].partition(" ")
    props = {"email": lead["email"], "firstname": first, "lastname": last, "company": lead["company"],
             "jobtitle": lead.get("title", ""), "hubspotscore": str(lead["score"]),
             "hs_analytics_source": lead["source"].upper(), "hs_object_id": contact["hs_object_id"]}
    return {"vid": int(contact["hs_object_id"]), "properties": {k: {"value": v} for k, v in props.items()}}


def _post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def run_demo(base_settings) -> int:
    from datetime import datetime

    from jobs.scheduler import monthly_retro, sla_sweep, weekly_digest
    from settings import load_settings

    lang = base_settings.LANGUAGE
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    printed = threading.Lock()

    def show(call):
        with printed:
            print(render_call(call, lang), flush=True)

    def event_arrived(delivery):
        with printed:
            print(t("demo.event", lang, type=delivery.type, lead=delivery.body["data"]["lead"]["id"],
                    id=delivery.id), flush=True)

    trusted = os.environ.get("REQUESTS_CA_BUNDLE")
    with SlackStandIn(on_call=show) as slack, WebhookReceiver(EVENT_SECRET, on_delivery=event_arrived) as receiver, \
            HubSpotStandIn() as crm, SalesforceStandIn() as sfdc:
        sf_leads = {}
        for lead in LEADS:  # the marketing tool already holds these contacts, synced to Salesforce as Leads
            crm.add_contact(lead["email"], firstname=lead["name"], lifecyclestage="marketingqualifiedlead")
            sf_leads[lead["email"]] = sfdc.add_lead(lead["email"], LastName=lead["name"],
                                                    Company=lead.get("company") or "-")
        setup_hubspot(make_hubspot_client(crm.token, crm.url))
        # Salesforce's stand-in speaks HTTPS with a certificate of its own test CA: trusted as an org's proxy CA
        # would be, through REQUESTS_CA_BUNDLE (docs/salesforce.md)
        os.environ["REQUESTS_CA_BUNDLE"] = sfdc.ca_file
        for user, email in ((AIKO, "aiko@demo.example"), (KEN, "ken@demo.example")):
            slack.add_user(user, name=user.removeprefix("U0").lower(), email=email)
            sfdc.add_user(email)  # the same people in Salesforce: the Lead's owner follows the claim
        settings = load_settings(
            _env_file=None, SLACK_BOT_TOKEN="xoxb-demo", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.url,
            DATABASE_URL=f"sqlite:///{OUT / 'demo.db'}", HANDOFF_CHANNEL=HANDOFF, MARKETING_CHANNEL=MARKETING,
            LEAD_WEBHOOK_TOKEN=HOOK, MANAGER_IDS=MANAGER, LANGUAGE=lang, SCHEDULER="off",
            TIMEZONE=base_settings.TIMEZONE, OUTBOX_CHANNEL_RATE=20.0,
            EVENT_WEBHOOK_URLS=receiver.url, EVENT_WEBHOOK_SECRET=EVENT_SECRET,
            HUBSPOT_TOKEN=crm.token, HUBSPOT_API_URL=crm.url, SALESFORCE_LOGIN_URL=sfdc.url,
            SALESFORCE_CLIENT_ID=sfdc.client_id, SALESFORCE_CLIENT_SECRET=sfdc.client_secret)
        # The demo's day: Monday 30 November 2026, 10:00, in the team's time zone; the clock moves when we say.
        clock = FakeClock(datetime(2026, 11, 30, 10, 0, tzinfo=settings.tz))
        rt = build_runtime(settings, now=clock)
        server = rt.start_http(host="127.0.0.1", port=0)
        stop = threading.Event()
        rt.start_background(stop, scheduler=False)
        base = f"http://127.0.0.1:{server.effective_port}"
        print(t("demo.start", lang, url=slack.url, db=OUT / "demo.db"), flush=True)
        print(t("demo.integrations", lang, events=receiver.url, hubspot=crm.url), flush=True)
        print(t("demo.salesforce", lang, url=sfdc.url), flush=True)
        done = setup_salesforce(SalesforceConnection(sfdc.url, sfdc.client_id, sfdc.client_secret, keep_budget=False))
        print(t("demo.salesforce_setup", lang, created=sum(created for _, created in done)), "\n", flush=True)

        def say(key, **kw):
            rt.services.sender.drain(10)
            time.sleep(0.2)
            with printed:
                print("\n" + t(key, lang, **kw), flush=True)

        def slack_post(body: str, **headers):
            answer = _post(base + "/slack/events", body.encode(),
                           {**slack_requests.signed_headers(SECRET, body), **headers})
            rt.settle()  # the click's work is done before the demo's clock moves on
            return answer

        say("demo.step.leads", n=len(LEADS))
        ids = []
        for n, lead in enumerate(LEADS):
            # The second arrives the way a HubSpot workflow's "Send a webhook" action sends a contact.
            body = workflow_body(lead, crm) if n == 1 else lead
            status, body = _post(base + "/hooks/leads", json.dumps(body).encode(),
                                 {"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"})
            ids.append(json.loads(body)["id"])
            with printed:
                print(t("demo.step.answer", lang, email=lead["email"], status=status, body=body), flush=True)

        say("demo.step.update", score=88)
        _post(base + "/hooks/leads", json.dumps({**LEADS[3], "score": 88}).encode(),
              {"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"})

        say("demo.step.claim", user=AIKO)
        click = slack_requests.block_action(ActionId.CLAIM, str(ids[0]), AIKO, HANDOFF)
        slack_post(click)

        say("demo.step.double", user=KEN)
        slack_post(slack_requests.block_action(ActionId.CLAIM, str(ids[0]), KEN, HANDOFF))

        say("demo.step.disqualify", user=KEN)
        slack_post(slack_requests.block_action(ActionId.DISQUALIFY, str(ids[2]), KEN, HANDOFF))
        values = {**slack_requests.select_value(BlockId.REASON, "value", "student_personal"),
                  **slack_requests.text_value(BlockId.NOTE, "value", "学生さんでした / a student, not a buyer")}
        slack_post(slack_requests.view_submission(CallbackId.DISQUALIFY, str(ids[2]), KEN, values))

        say("demo.step.retry")
        slack_post(click, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

        def sweep_at(*hm_day):
            day, hh, mm = hm_day if len(hm_day) == 3 else (30, *hm_day)
            clock.set(datetime(2026, 11, day, hh, mm, tzinfo=settings.tz) if day > 1 else
                      datetime(2026, 12, day, hh, mm, tzinfo=settings.tz))
            say("demo.step.sweep", at=local_time(clock(), settings.tz, lang))
            sla_sweep(rt.services)

        say("demo.step.ladder")
        for hh, mm in ((12, 0), (13, 12), (14, 0), (15, 0)):
            sweep_at(hh, mm)
        say("demo.step.reassign", manager=MANAGER, user=KEN)
        slack_post(slack_requests.users_select_action(ActionId.REASSIGN, f"{BlockId.REASSIGN}:{ids[1]}", KEN,
                                                      MANAGER, "D0MANAGER"))
        sweep_at(17, 12)
        say("demo.step.snooze", user=KEN)
        clock.set(datetime(2026, 11, 30, 17, 20, tzinfo=settings.tz))
        slack_post(slack_requests.block_action(ActionId.SNOOZE, f"{ids[1]}:1h", KEN, "D0KEN"))
        sweep_at(18, 30)
        sweep_at(1, 9, 20)
        say("demo.step.contacted", user=KEN)
        slack_post(slack_requests.block_action(ActionId.CONTACTED, str(ids[1]), KEN, "D0KEN"))
        sweep_at(1, 10, 0)

        # A rep who lives in the CRM: Globex's lead, never claimed in Slack, is moved to "open deal" in HubSpot; the
        # workflow "lead status changed → send a webhook" tells Handoff (docs/crm-status.md).
        say("demo.step.crm_status", company=LEADS[3]["company"])
        clock.set(datetime(2026, 12, 1, 10, 20, tzinfo=settings.tz))
        contact = crm.contact_by_email(LEADS[3]["email"])
        crm.edit_contact(contact["hs_object_id"], hs_lead_status="OPEN_DEAL")
        changed = {"hs_object_id": contact["hs_object_id"], "email": LEADS[3]["email"], "hs_lead_status": "OPEN_DEAL"}
        status, answer = _post(base + "/hooks/status", json.dumps(changed).encode(),
                               {"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"})
        with printed:
            print(t("demo.step.answer", lang, email=LEADS[3]["email"], status=status, body=answer), flush=True)
        rt.services.hubspot.drain(clock(), 10)  # Handoff writes the SQL back: the workflow fires again, an echo
        again = {**changed, "lifecyclestage": crm.contact_by_email(LEADS[3]["email"]).get("lifecyclestage")}
        status, answer = _post(base + "/hooks/status", json.dumps(again).encode(),
                               {"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"})
        say("demo.step.crm_echo")
        with printed:
            print(t("demo.step.answer", lang, email=LEADS[3]["email"], status=status, body=answer), flush=True)
        sweep_at(1, 12, 0)

        say("demo.step.outcomes", user=AIKO)
        clock.set(datetime(2026, 12, 1, 11, 0, tzinfo=settings.tz))
        slack_post(slack_requests.block_action(ActionId.SQL, str(ids[0]), AIKO, HANDOFF))
        clock.set(datetime(2026, 12, 1, 16, 0, tzinfo=settings.tz))
        slack_post(slack_requests.block_action(ActionId.WON, str(ids[0]), AIKO, HANDOFF))
        rt.services.sender.drain(10)
        slack_post(slack_requests.block_action(ActionId.QUALITY_GOOD, str(ids[0]), AIKO, "D0AIKO"))

        say("demo.step.lost", user=KEN)
        slack_post(slack_requests.block_action(ActionId.LOST, str(ids[1]), KEN, HANDOFF))
        values = {**slack_requests.select_value(BlockId.REASON, "value", "budget"),
                  **slack_requests.text_value(BlockId.NOTE, "value", "予算凍結、4月に再検討 / budget frozen until April")}
        slack_post(slack_requests.view_submission(CallbackId.LOST, str(ids[1]), KEN, values))

        say("demo.step.crm")
        for lead in LEADS[:3]:
            rt.services.hubspot.drain(clock(), 10)
            contact = crm.contact_by_email(lead["email"])
            shown = {k: v for k, v in sorted(contact.items()) if k.startswith("handoff_") or k in
                     ("hs_lead_status", "lifecyclestage")}
            with printed:
                print(t("demo.hubspot_contact", lang, email=lead["email"]), flush=True)
                for k, v in shown.items():
                    print(f"   │ {k}: {v}", flush=True)

        say("demo.step.salesforce")
        rt.services.salesforce.drain(clock(), 10)
        for lead in LEADS[:3]:
            row = sfdc.record(sf_leads[lead["email"]])
            shown = {k: v for k, v in sorted(row.items()) if k.startswith("Handoff_") or k in ("Status", "OwnerId")}
            with printed:
                print(t("demo.salesforce_lead", lang, email=lead["email"], id=row["Id"]), flush=True)
                for k, v in shown.items():
                    print(f"   │ {k}: {v}", flush=True)
                for task in sorted((x for x in sfdc.tasks() if x["WhoId"] == row["Id"]), key=lambda x: x["Id"]):
                    print(t("demo.salesforce_task", lang, subject=task["Subject"], day=task["ActivityDate"],
                            note=task.get("Description") or "-"), flush=True)

        say("demo.step.home", user=MANAGER)
        home = slack_requests.app_home_opened(MANAGER)
        _post(base + "/slack/events", home.encode(),
              {**slack_requests.signed_headers(SECRET, home), "Content-Type": "application/json"})

        say("demo.step.kpi", user=MANAGER)
        clock.set(datetime(2026, 12, 1, 16, 30, tzinfo=settings.tz))
        _, answer = slack_post(slack_requests.slash_command("/kpi", "week", MANAGER, HANDOFF))
        report = json.loads(answer)
        with printed:
            print("→ " + t("demo.private_answer", lang) + "\n" + "\n".join(
                "   │ " + line for line in render_blocks(report.get("blocks"))), flush=True)
        share = next(e["value"] for b in report["blocks"] if b.get("type") == "actions" for e in b["elements"]
                     if e.get("action_id") == ActionId.KPI_SHARE)
        slack_post(slack_requests.block_action(ActionId.KPI_SHARE, share, MANAGER, HANDOFF))

        say("demo.step.retro")
        clock.set(datetime(2026, 12, 1, 16, 40, tzinfo=settings.tz))
        monthly_retro(rt.services)

        say("demo.step.digest")
        clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=settings.tz))
        weekly_digest(rt.services)
        weekly_digest(rt.services)  # a second scheduler, or a re-run: still one digest

        rt.services.sender.drain(10)
        rt.shutdown(10)  # its sender must not take the second act's messages
        server.close()
        two_teams(settings, slack, clock, say, printed, lang)

        time.sleep(0.3)
        for n, f in enumerate(slack.files, 1):
            path = OUT / f"chart-{n}.png"
            path.write_bytes(f["bytes"])
            print(t("demo.chart_saved", lang, path=path, title=f.get("title") or ""), flush=True)
        print("\n" + t("demo.done_out", lang, events=len(receiver.events()), rejected=len(receiver.rejected),
                       writes=len([c for c in crm.calls if c.path.endswith("/batch/update") and c.status == 200])),
              flush=True)
        print(t("demo.done_salesforce", lang, calls=len([c for c in sfdc.calls if "/services/data/" in c.path]),
                tasks=len(sfdc.tasks())), flush=True)
        print(t("demo.done", lang, posts=len(slack.calls_to("chat.postMessage")),
                       updates=len(slack.calls_to("chat.update")),
                       ephemerals=len(slack.calls_to("chat.postEphemeral")),
                       modals=len(slack.calls_to("views.open")), homes=len(slack.calls_to("views.publish"))))
    if trusted is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = trusted
    return 0


INSIDE, FIELD = "C0ISALES", "C0FSALES"
INSIDE_MGR, FIELD_MGR, MIKA, TAKU = "U0MGRIS", "U0MGRFS", "U0MIKA", "U0TAKU"
ROUTING = f"""\
teams:
  inside-sales:
    name: インサイドセールス / Inside sales
    channel: {INSIDE}
    managers: [{INSIDE_MGR}]
    reps: [{MIKA}]
    sla_claim_minutes: 60
    next: field-sales
  field-sales:
    name: フィールドセールス / Field sales
    channel: {FIELD}
    managers: [{FIELD_MGR}]
    reps: [{TAKU}]
    sla_claim_minutes: 480
rules:
  - when: {{score: ">=95", attributes.employees: ">=1000"}}
    team: field-sales
  - team: inside-sales
"""


def two_teams(settings, slack, clock, say, printed, lang) -> None:
    """The second act: the same day with a routing file (docs/routing.md). An MQL goes to inside sales, who
    qualify it by phone and hand it to field sales with a note; field sales take it within their own SLA."""
    from datetime import datetime

    from jobs.scheduler import sla_sweep
    from settings import load_settings

    path = OUT / "routing.yml"
    path.write_text(ROUTING, encoding="utf-8")
    routed = load_settings(**{**settings.model_dump(), "_env_file": None, "ROUTING_FILE": str(path),
                              "EVENT_WEBHOOK_URLS": (), "EVENT_WEBHOOK_SECRET": None, "HUBSPOT_TOKEN": None,
                              "SALESFORCE_LOGIN_URL": None})
    clock.set(datetime(2026, 12, 8, 10, 0, tzinfo=settings.tz))
    rt = build_runtime(routed, now=clock)
    server = rt.start_http(host="127.0.0.1", port=0)
    stop = threading.Event()
    rt.start_background(stop, scheduler=False)
    base = f"http://127.0.0.1:{server.effective_port}"

    def slack_post(body: str):
        answer = _post(base + "/slack/events", body.encode(), slack_requests.signed_headers(SECRET, body))
        rt.settle()
        rt.services.sender.drain(10)
        return answer

    say("demo.step.routing", path=path)
    lead = {"external_id": "hs-1005", "email": "kimura@kansai-denki.example", "name": "木村 健", "score": 80,
            "company": "関西電機株式会社", "title": "営業企画部 課長", "source": "webinar"}
    _, body = _post(base + "/hooks/leads", json.dumps(lead).encode(),
                    {"Authorization": f"Bearer {HOOK}", "Content-Type": "application/json"})
    lead_id = json.loads(body)["id"]
    say("demo.step.inside_claim", user=MIKA)
    slack_post(slack_requests.block_action(ActionId.CLAIM, str(lead_id), MIKA, INSIDE))
    clock.set(datetime(2026, 12, 8, 14, 0, tzinfo=settings.tz))
    say("demo.step.qualify", user=MIKA)
    slack_post(slack_requests.block_action(ActionId.CONTACTED, str(lead_id), MIKA, INSIDE))
    slack_post(slack_requests.block_action(ActionId.SQL, str(lead_id), MIKA, INSIDE))
    note = slack_requests.text_value(BlockId.NOTE, "value", "予算確保済み、来週大阪でデモ希望 / budget approved, "
                                                            "wants a demo in Osaka next week")
    slack_post(slack_requests.view_submission(CallbackId.QUALIFY, str(lead_id), MIKA, note))
    clock.set(datetime(2026, 12, 9, 9, 30, tzinfo=settings.tz))  # half of field sales' 480 minutes have passed
    say("demo.step.handed_nag", at=local_time(clock(), settings.tz, lang))
    sla_sweep(rt.services)
    rt.services.sender.drain(10)
    clock.set(datetime(2026, 12, 9, 9, 45, tzinfo=settings.tz))
    say("demo.step.field_claim", user=TAKU)
    slack_post(slack_requests.block_action(ActionId.CLAIM, f"{lead_id}:handed", TAKU, FIELD))
    say("demo.step.team_kpi", user=FIELD_MGR)
    _, answer = slack_post(slack_requests.slash_command("/kpi", "week", FIELD_MGR, FIELD))
    with printed:
        print("→ " + t("demo.private_answer", lang) + "\n" + "\n".join(
            "   │ " + line for line in render_blocks(json.loads(answer).get("blocks"))), flush=True)
    rt.shutdown(10)
    server.close()
