"""In a real browser (Playwright driving Debian's chromium): log in, open the inbox and a task, submit the
form with an error, correct it and complete it, look at the case with its diagram. Screenshots go to
var/screenshots/ (look at them)."""

import threading
from pathlib import Path

import pytest
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD, start

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run 'make browser'")


@pytest.fixture
def server(app):
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_caseworker_works_a_task_in_the_browser(server, page, users, web_rt):
    case_id = start(web_rt, data={"hundename": "Bello", "halter": {"name": "Erika Muster", "ort": "Marburg"}})[0]
    start(web_rt, count=2)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the form with errors comes back as 422: the console reports that one; anything else is a fault
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "422" not in msg.text
            else None)

    page.goto(f"{server}/login")
    shot(page, "01-login")
    page.get_by_label("Benutzername").fill("anna")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{server}/posteingang")
    assert page.get_by_role("heading", name="Posteingang").is_visible()
    assert page.locator("table.tasks tbody tr").count() == 3
    shot(page, "02-inbox")

    page.get_by_role("link", name="MR-022.31-2026-00001").locator("xpath=../..").get_by_role(
        "link", name="Antrag prüfen").click()
    assert page.get_by_role("heading", name="Antrag prüfen").is_visible()
    page.get_by_label("Anmerkung").fill("Impfpass fehlt noch")
    page.get_by_role("button", name="Abschließen").click()
    assert page.locator("#feld-vollstaendig-fehler").inner_text() == "Pflichtfeld: bitte ausfüllen."
    assert page.get_by_role("alert").get_by_role("link", name="Unterlagen vollständig: Pflichtfeld").is_visible()
    assert page.get_by_label("Anmerkung").input_value() == "Impfpass fehlt noch"
    shot(page, "03-task-invalid")

    page.get_by_label("Ja").check()
    page.get_by_role("button", name="Abschließen").click()
    page.wait_for_url(f"{server}/posteingang")
    assert page.get_by_text("abgeschlossen (MR-022.31-2026-00001)").is_visible()
    shot(page, "04-inbox-after-complete")

    page.goto(f"{server}/vorgaenge/{case_id}")
    page.wait_for_selector("#diagram[data-ready='1']", timeout=15000)
    assert page.locator(".djs-element.active").count() == 1  # Steuer festsetzen
    assert page.locator(".djs-element.done").count() >= 3
    assert page.get_by_role("cell", name="Aufgabe abgeschlossen").is_visible()
    shot(page, "05-case")
    assert errors == []
