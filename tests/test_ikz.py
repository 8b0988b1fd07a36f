"""The IKZ dashboard: figures per city and process from cases with known times (injected clock), asserted
exactly; the page and the API for team leads and admins only, figures of every city but no case of another.

Timeline (clock of test_web_fixtures starts 2026-11-02 09:00 UTC = T0; model ikz_probe: Prüfen (due P5D) →
Bescheid → end; Wetzlar has a processing deadline of 3 days for ikz_probe):

    2025-12-20  L1 (Limburg) starts, Prüfen left open (due 2025-12-25)
    T0          M1 (Marburg) and W1 (Wetzlar) start
    T0+2h       M1 Prüfen done (2 h)
    T0+6h       W1 Prüfen done (6 h); M2 starts
    T0+10h      M2 Prüfen done (4 h)
    T0+26h      M1 Bescheid done (24 h): M1 closed after 26 h
    T0+72h      W1 Bescheid done (66 h): W1 closed after 72 h; M3, W2, W3 start
    T0+73h      W2 Prüfen done (1 h)
    now T0+193h M3, W3 have Prüfen past due (T0+192h); W2 is open > 3 days
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import ROOT, make_runtime
from sqlalchemy import insert
from test_web_browser import CHROMIUM, axe_violations, page, server, shot  # noqa: F401
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD, login

from engine.cases import complete_task, list_tasks, start_case
from engine.deploy import Bundle, deploy
from engine.ikz import PeriodError, figures, period
from engine.schema import Dispatch
from engine.setup import initialise
from engine.tenants import load_tenants
from engine.users import add_user, create_token

PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Defs" targetNamespace="http://ozgflow.de/tests">
  <bpmn:process id="ikz_probe" name="IKZ-Probe" isExecutable="true">
    <bpmn:laneSet id="LS"><bpmn:lane id="L" name="steuern">
      <bpmn:flowNodeRef>S</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_Pruefen</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>Task_Bescheid</bpmn:flowNodeRef><bpmn:flowNodeRef>E</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_Pruefen" name="Antrag prüfen">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="dueDate" value="P5D" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="Task_Bescheid" name="Bescheid erstellen">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="E"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_Pruefen" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_Pruefen" targetRef="Task_Bescheid" />
    <bpmn:sequenceFlow id="F3" sourceRef="Task_Bescheid" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>
""".encode()
YEAR = {"start": "2026-01-01", "end": "2026-12-31"}
H = 3600


@pytest.fixture
def web_rt(db_url, tmp_path, clock):
    """The shipped tenants plus a processing deadline of 3 days for ikz_probe in Wetzlar; the shipped
    models and ikz_probe deployed; SQLite and PostgreSQL."""
    tenants = load_tenants(ROOT / "engine" / "defaults" / "tenants.toml")
    wetzlar = tenants.get("wetzlar").settings  # as if the file said [tenants.wetzlar.ikz] processing_days.ikz_probe
    wetzlar.setdefault("ikz", {}).setdefault("processing_days", {})["ikz_probe"] = 3
    runtime = make_runtime(db_url, tmp_path / "var", clock=clock, tenants=tenants)
    initialise(runtime)
    deploy(runtime, [Bundle({"ikz_probe.bpmn": PROBE})])
    yield runtime
    runtime.close()


def _start(rt, tenant):
    return start_case(rt, "ikz_probe", tenant, {"antrag": "x"})[0]["id"]


def _done(rt, case_id, element):
    [task] = [t for t in list_tasks(rt, case_id=case_id) if t["element_id"] == element]
    complete_task(rt, task["id"], "sb", {})


@pytest.fixture
def timeline(web_rt, clock):
    rt, t0 = web_rt, clock.now
    ids = {}

    def at(hours):
        clock.now = t0 + timedelta(hours=hours)

    clock.now = datetime(2025, 12, 20, 9, 0, tzinfo=UTC)
    ids["L1"] = _start(rt, "limburg")
    at(0)
    ids["M1"], ids["W1"] = _start(rt, "marburg"), _start(rt, "wetzlar")
    at(2)
    _done(rt, ids["M1"], "Task_Pruefen")
    at(6)
    _done(rt, ids["W1"], "Task_Pruefen")
    ids["M2"] = _start(rt, "marburg")
    at(10)
    _done(rt, ids["M2"], "Task_Pruefen")
    at(26)
    _done(rt, ids["M1"], "Task_Bescheid")
    at(72)
    _done(rt, ids["W1"], "Task_Bescheid")
    ids["M3"], ids["W2"], ids["W3"] = _start(rt, "marburg"), _start(rt, "wetzlar"), _start(rt, "wetzlar")
    at(73)
    _done(rt, ids["W2"], "Task_Pruefen")
    with rt.db.begin() as conn:  # letters as engine.dispatch records them: two by post, one by e-mail
        rows = [("marburg", "post", t0 + timedelta(hours=26)), ("marburg", "post", t0 + timedelta(hours=38)),
                ("marburg", "email", t0 + timedelta(hours=26)),
                ("limburg", "post", datetime(2025, 12, 21, 9, 0, tzinfo=UTC))]  # last year: not in 2026
        conn.execute(insert(Dispatch), [
            {"case_id": ids["M1"] if tenant == "marburg" else ids["L1"], "tenant": tenant, "process_id": "ikz_probe",
             "element_id": "Send_Bescheid", "letter": "bescheid", "channel": channel, "created_at": at_,
             "dispatched_at": at_, "reason": "letter needs written form" if channel == "post" else None}
            for tenant, channel, at_ in rows])
    at(193)
    return ids


def _probe(data, tenant):
    [city] = [c for c in data["cities"] if c["tenant"] == tenant]
    [row] = [p for p in city["processes"] if p["process_id"] == "ikz_probe"]
    return row


def test_figures_from_known_times(web_rt, timeline):
    data = figures(web_rt, **YEAR)
    assert data["period"] == {"from": "2026-01-01", "to": "2026-12-31"}
    assert data["as_of"] == "2026-11-10T10:00:00Z"
    assert {"process_id": "ikz_probe", "name": "IKZ-Probe"} in data["processes"]
    assert [c["tenant"] for c in data["cities"]] == ["marburg", "wetzlar", "giessen", "limburg", "fulda"]
    assert _probe(data, "marburg") == {
        "process_id": "ikz_probe", "received": 3, "open": 2, "overdue": 1, "closed": 1,
        "median_processing_seconds": 26 * H, "media_breaks": 2, "letters": 3,
        "steps": [{"element_id": "Task_Pruefen", "title": "Antrag prüfen", "completed": 2,
                   "median_seconds": 3 * H},  # median of 2 h and 4 h; steps in the order cases reach them
                  {"element_id": "Task_Bescheid", "title": "Bescheid erstellen", "completed": 1,
                   "median_seconds": 24 * H}]}
    assert _probe(data, "wetzlar") == {
        "process_id": "ikz_probe", "received": 3, "open": 2, "overdue": 2, "closed": 1,  # W2: > 3 days; W3: task
        "median_processing_seconds": 72 * H, "media_breaks": 0, "letters": 0,
        "steps": [{"element_id": "Task_Pruefen", "title": "Antrag prüfen", "completed": 2,
                   "median_seconds": int(3.5 * H)},  # median of 6 h and 1 h
                  {"element_id": "Task_Bescheid", "title": "Bescheid erstellen", "completed": 1,
                   "median_seconds": 66 * H}]}
    limburg = _probe(data, "limburg")  # received last year, still open, its task long overdue
    assert (limburg["received"], limburg["open"], limburg["overdue"], limburg["closed"], limburg["letters"]) == \
        (0, 1, 1, 0, 0)
    giessen = _probe(data, "giessen")
    assert (giessen["received"], giessen["open"], giessen["median_processing_seconds"], giessen["steps"]) == \
        (0, 0, None, [])
    [marburg] = [c for c in data["cities"] if c["tenant"] == "marburg"]
    assert marburg["totals"] == {"received": 3, "open": 2, "overdue": 1, "closed": 1, "media_breaks": 2,
                                 "letters": 3, "median_processing_seconds": 26 * H}


def test_period_bounds_are_berlin_days(web_rt, timeline):
    # 3 November 2026 (Berlin): M1 closed then (12:00 Berlin), its Bescheid was done; nothing was received
    day = figures(web_rt, "2026-11-03", "2026-11-03")
    m = _probe(day, "marburg")
    assert (m["received"], m["closed"], m["median_processing_seconds"], m["media_breaks"], m["letters"]) == \
        (0, 1, 26 * H, 1, 2)  # the second post letter: T0+38h = 3 Nov 23:00 UTC = 4 Nov in Berlin
    assert [(s["element_id"], s["completed"]) for s in m["steps"]] == [("Task_Bescheid", 1)]
    assert (m["open"], m["overdue"]) == (2, 1)  # "now" figures do not depend on the period
    last_year = _probe(figures(web_rt, "2025-01-01", "2025-12-31"), "limburg")
    assert (last_year["received"], last_year["letters"], last_year["media_breaks"]) == (1, 1, 1)


def test_period_defaults_and_errors():
    now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 1 January 2027 in Berlin
    assert period(now=now) == (date(2027, 1, 1), date(2027, 1, 1))
    with pytest.raises(PeriodError, match="'from' must be a date"):
        period("2026-13-01", now=now)
    with pytest.raises(PeriodError, match="ends"):
        period("2026-05-02", "2026-05-01", now=now)


@pytest.fixture
def people(web_rt, users):
    add_user(web_rt, "tina", "wetzlar", "teamlead", PASSWORD, ["steuern"])
    return users


def test_page_for_team_leads_shows_every_city_but_no_case(client, web_rt, timeline, people):
    login(client, "tina")  # team lead of Wetzlar
    resp = client.get("/ikz?from=2026-01-01&to=2026-12-31")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for name in ("Universitätsstadt Marburg", "Stadt Wetzlar", "Kreisstadt Limburg a. d. Lahn", "IKZ-Probe"):
        assert name in html
    assert "26,0 Std." in html and "3,0 Tage" in html  # Marburg's and Wetzlar's median processing time
    assert "<svg role=\"img\"" in html and "<title id=" in html
    assert "MR-" not in html and "WZ-" not in html, "no Aktenzeichen on the dashboard"
    assert "/vorgaenge/" not in html, "no link to any case"
    assert client.get("/ikz?from=gestern").status_code == 400
    login(client, "anna")  # a caseworker
    assert client.get("/ikz").status_code == 403


def test_api_for_team_leads_and_admins(client, web_rt, timeline, people):
    tina, wim, root = (create_token(web_rt, n) for n in ("tina", "wim", "root"))
    resp = client.get("/api/v1/ikz?from=2026-01-01&to=2026-12-31", headers={"Authorization": f"Bearer {tina}"})
    assert resp.status_code == 200 and resp.get_json() == figures(web_rt, **YEAR)
    assert client.get("/api/v1/ikz", headers={"Authorization": f"Bearer {root}"}).status_code == 200
    assert client.get("/api/v1/ikz", headers={"Authorization": f"Bearer {wim}"}).status_code == 403
    assert client.get("/api/v1/ikz").status_code == 401
    bad = client.get("/api/v1/ikz?to=2026-02-30", headers={"Authorization": f"Bearer {tina}"})
    assert bad.status_code == 400 and "'to' must be a date" in bad.get_json()["error"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run 'make browser'")
def test_dashboard_in_the_browser(server, page, web_rt, timeline, people, db_url):  # noqa: F811
    if not db_url.startswith("sqlite"):
        pytest.skip("the browser look once is enough")
    page.goto(f"{server}/login")
    page.get_by_label("Benutzername").fill("tina")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.get_by_role("link", name="IKZ-Dashboard").click()
    page.get_by_label("Von").fill("2026-01-01")
    page.get_by_role("button", name="Anzeigen").click()
    page.wait_for_url("**/ikz?from=2026-01-01*")
    assert page.get_by_role("heading", name="IKZ-Dashboard").is_visible()
    assert page.get_by_role("img", name="Vorgänge je Kommune – IKZ-Probe").is_visible()
    shot(page, "ikz-dashboard")
    assert axe_violations(page) == []


def test_durations_for_people():
    from web.ikz import duration

    assert [duration(s) for s in (None, 12, 60 * 40, 26 * H, 3 * 86400)] == \
        ["–", "12 Sek.", "40 Min.", "26,0 Std.", "3,0 Tage"]


def test_suspended_cases_are_open_terminated_ones_are_not(web_rt, timeline):
    from engine.suspension import suspend, terminate

    suspend(web_rt, timeline["M2"], "root", "Akte beim Gericht")
    terminate(web_rt, timeline["M3"], "root", "Antrag zurückgenommen")
    m = _probe(figures(web_rt, **YEAR), "marburg")
    assert (m["received"], m["open"], m["overdue"], m["closed"]) == (3, 1, 0, 1)  # M3 was the overdue one
