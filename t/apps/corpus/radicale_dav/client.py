"""Drives Radicale with python3-caldav (a real CalDAV client library, the
one used by many calendar tools):

    python3 client.py http://127.0.0.1:8080/dav

as user "alice" (Basic authentication): find the principal, create a calendar (MKCALENDAR), PUT
three events, REPORT a time range (calendar-query), change one event and
delete another, read the rest back; PUT one more with curl streaming
a chunked body; user "mallory" gets 403 on alice's
calendar and a wrong password 401. Sorted values, so the answer is
the same against every server.
"""
import os
import sys
from datetime import datetime

import caldav
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from corpusclient import Steps, check, run_cmd, base_url   # noqa: E402

url = base_url() + "/"
client = caldav.DAVClient(url, username="alice", password="secret", timeout=30)
state = {}

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//mod_pywsgi corpus//EN
BEGIN:VEVENT
UID:{uid}@corpus
DTSTAMP:20260101T000000Z
DTSTART:202601{day:02d}T100000Z
DTEND:202601{day:02d}T110000Z
SUMMARY:{summary}
END:VEVENT
END:VCALENDAR
"""


def summaries(events):
    return sorted(str(e.vobject_instance.vevent.summary.value) for e in events)


def principal():
    state["principal"] = client.principal()
    return str(state["principal"].url).replace(url, "/")


def make_calendar():
    cal = state["principal"].make_calendar(name="Corpus", cal_id="corpus")
    state["cal"] = cal
    return [c.name for c in state["principal"].calendars()]


def put_events():
    cal = state["cal"]
    for i, summary in enumerate(["stand-up", "lunch", "review"], start=1):
        cal.save_event(EVENT.format(uid="ev%d" % i, day=i * 5,
                                    summary=summary))
    return summaries(cal.events())


def report_range():
    found = state["cal"].date_search(start=datetime(2026, 1, 8),
                                     end=datetime(2026, 1, 12), expand=False)
    return summaries(found)


def change_delete():
    cal = state["cal"]
    ev = cal.event_by_uid("ev1@corpus")
    ev.vobject_instance.vevent.summary.value = "stand-up (moved)"
    ev.save()
    cal.event_by_uid("ev3@corpus").delete()
    return summaries(cal.events())


def put_chunked():
    # curl -T - streams stdin with Transfer-Encoding: chunked (no
    # Content-Length), as any client uploading a stream does.
    cal_url = str(state["cal"].url)
    body = EVENT.format(uid="ev4", day=20, summary="streamed")
    out = run_cmd(["curl", "-sS", "-u", "alice:secret", "-T", "-",
                   "-H", "Content-Type: text/calendar",
                   "-o", "/dev/null", "-w", "%{http_code}",
                   cal_url + "ev4.ics"], input=body)
    check(out in ("201", "204"), "PUT (chunked) answered %s" % out)
    ev = state["cal"].event_by_uid("ev4@corpus")
    return str(ev.vobject_instance.vevent.summary.value)


def other_user_denied():
    # Plain requests: caldav turns a 401/403 into an exception of its own.
    cal_url = str(state["cal"].url)
    statuses = []
    for user, password in [("mallory", "x"), ("alice", "wrong")]:
        res = requests.request("PROPFIND", cal_url, auth=(user, password),
                               headers={"Depth": "1"}, timeout=30)
        statuses.append(res.status_code)
    check(statuses == [403, 401], "PROPFIND as mallory, then with a wrong "
          "password: %s (want 403, 401)" % statuses)
    return statuses


s = Steps()
s.run("find the principal", principal)
s.run("MKCALENDAR", make_calendar, needs=["find the principal"])
s.run("PUT three events", put_events, needs=["MKCALENDAR"])
s.run("REPORT a time range", report_range, needs=["PUT three events"])
s.run("change one event, delete one", change_delete, needs=["PUT three events"])
s.run("PUT with a chunked body (curl -T -)", put_chunked,
      needs=["MKCALENDAR"])
s.run("another user and a wrong password are denied", other_user_denied, needs=["MKCALENDAR"])
