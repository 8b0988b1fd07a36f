"""In a real browser: a designer uploads a refused model (sees its report) and a good one, opens the version and
sees its diagram drawn by bpmn-js, compares two versions; an admin previews and moves cases and suspends one.
Screenshots go to var/screenshots/ (look at them)."""


import pytest
from chain_bpmn import chain, script, user
from conftest import ROOT, make_runtime
from test_web_browser import CHROMIUM, SHOTS, axe_violations, page, server, shot  # noqa: F401
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD, start

from engine.cases import get_case
from engine.deploy import bundles_from_paths, deploy
from engine.models import Bundle
from engine.users import add_user

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run 'make browser'")

GOOD = chain("umzug", [user("A", "Antrag prüfen"), user("B", "Bescheid schreiben")], name="Ummeldung")
BETTER = chain("umzug", [user("A", "Antrag prüfen", "steuern"), script("S", "Gebühr berechnen", "gebuehr = 12"),
                         user("B", "Bescheid schreiben")], name="Ummeldung")
BAD = chain("boese", [script("Skript", "Böses Skript", "import os")], name="Böse")


@pytest.fixture
def web_rt(sqlite_url, tmp_path, clock):
    runtime = make_runtime(sqlite_url, tmp_path / "var", clock=clock)
    deploy(runtime, bundles_from_paths([ROOT / "processes" / p for p in ("nachforderung", "hundesteuer-anmeldung")]))
    yield runtime
    runtime.close()


def login(page, server, name):  # noqa: F811
    page.goto(f"{server}/login")
    page.get_by_label("Benutzername").fill(name)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{server}/posteingang")


def upload(page, name, content):  # noqa: F811
    page.set_input_files("#files", files=[{"name": name, "mimeType": "application/xml", "buffer": content}])
    page.get_by_role("button", name="Hochladen und prüfen").click()
    page.wait_for_load_state()


def test_designer_uploads_sees_report_and_diagram(server, page, web_rt):  # noqa: F811
    add_user(web_rt, "dora", "marburg", "designer", PASSWORD, [])
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the refused upload answers 422: the console reports that one; anything else is a fault
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "422" not in msg.text
            else None)
    login(page, server, "dora")
    page.get_by_role("link", name="Prozessmodelle").click()
    page.wait_for_url(f"{server}/modelle")

    upload(page, "boese.bpmn", BAD)
    assert page.get_by_role("heading", name="Prüfbericht").is_visible()
    row = page.locator("table.report tbody tr, table.report tr").filter(has_text="boese.bpmn").first
    assert "Skript" in row.inner_text() and "import" in row.inner_text()
    assert page.get_by_role("alert").filter(has_text="nichts gespeichert").is_visible()
    shot(page, "20-designer-refused")
    assert axe_violations(page) == []

    upload(page, "umzug.bpmn", GOOD)
    assert page.get_by_role("status").filter(has_text="Geprüft und gespeichert").is_visible()
    page.get_by_role("link", name="umzug, Version 1").click()
    page.wait_for_url(f"{server}/modelle/umzug/versionen/1")
    page.wait_for_selector("#diagram[data-ready='1']", timeout=15000)
    task_shape = page.locator("g.djs-element[data-element-id='A'] .djs-visual rect")
    assert task_shape.count() == 1  # the user task drawn as an SVG rect by bpmn-js
    assert page.locator("g.djs-element[data-element-id='B'] .djs-visual text").text_content() == "Bescheid schreiben"
    assert page.get_by_role("heading", name="Ummeldung – Version 1").is_visible()
    shot(page, "21-designer-version")
    assert axe_violations(page) == []

    page.goto(f"{server}/modelle")
    upload(page, "umzug.bpmn", BETTER)
    page.get_by_role("link", name="Version 1 und 2 vergleichen").click()
    page.wait_for_url(f"{server}/modelle/umzug/versionen/1/vergleich/2")
    assert page.locator("table.added").filter(has_text="Gebühr berechnen").is_visible()
    assert page.locator("table.changed").filter(has_text="steuern").is_visible()
    shot(page, "22-designer-diff")
    assert axe_violations(page) == []
    assert errors == []


def test_admin_moves_cases_and_suspends_one_in_the_browser(server, page, web_rt, users):  # noqa: F811
    deploy(web_rt, [Bundle({"umzug.bpmn": GOOD})], actor="dora")
    from engine.cases import start_case

    ids = [c["id"] for c in start_case(web_rt, "umzug", "marburg", count=2)]
    deploy(web_rt, [Bundle({"umzug.bpmn": BETTER})], actor="dora")
    [hund] = start(web_rt, "wetzlar")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, server, "root")
    page.goto(f"{server}/modelle/umzug/versionen/1")
    page.wait_for_selector("#diagram[data-ready='1']", timeout=15000)
    page.get_by_role("button", name="Vorschau anzeigen").click()
    page.wait_for_url(f"{server}/modelle/umzug/versionen/1/umstellen?nach=2")
    assert page.get_by_role("status").filter(has_text="2 von 2 laufenden Vorgängen").is_visible()
    shot(page, "23-admin-move-preview")
    assert axe_violations(page) == []
    page.get_by_role("button", name="auf Version 2 umstellen").click()
    assert page.get_by_role("status").filter(has_text="2 Vorgang/Vorgänge umgestellt").is_visible()
    assert all(get_case(web_rt, i)["version"] == 2 for i in ids)
    shot(page, "24-admin-moved")

    page.goto(f"{server}/vorgaenge/{hund}")  # a Wetzlar case: an admin of Marburg sees every city
    page.locator("summary", has_text="Vorgang anhalten").click()
    page.get_by_label("Grund", exact=True).fill("Widerspruch anhängig")
    page.get_by_role("button", name="Vorgang anhalten").click()
    page.wait_for_url(f"{server}/vorgaenge/{hund}")
    assert page.get_by_text("Dieser Vorgang ist angehalten").is_visible()
    assert get_case(web_rt, hund)["state"] == "suspended"
    page.screenshot(path=str(SHOTS / "25-admin-suspended.png"))  # the top of the (long) case page
    assert axe_violations(page) == []
    assert errors == []
