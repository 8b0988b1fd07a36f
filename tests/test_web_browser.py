"""In a real browser (Playwright driving Debian's chromium): log in, open the inbox and a task, submit the
form with an error, correct it and complete it, look at the case with its diagram. Screenshots go to
var/screenshots/ (look at them)."""

import threading
from pathlib import Path

import pytest
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD, PNG_1PX, SAMPLE_PDF, add_document, start

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"  # from the npm registry: make vendor
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run 'make browser'")


def axe_violations(page):
    """What axe-core finds on the page against WCAG 2.1 A/AA: [(rule id, impact, [targets])].

    The script is handed to the page through the DevTools protocol, not as a <script>: the app's
    Content-Security-Policy stays as it is (no inline scripts)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5]) for v in result["violations"]]


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
    assert axe_violations(page) == []
    page.get_by_label("Benutzername").fill("anna")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{server}/posteingang")
    assert page.get_by_role("heading", name="Posteingang").is_visible()
    assert page.locator("table.tasks tbody tr").count() == 3
    shot(page, "02-inbox")
    assert axe_violations(page) == []

    page.get_by_role("link", name="MR-022.31-2026-00001").locator("xpath=../..").get_by_role(
        "link", name="Antrag prüfen").click()
    assert page.get_by_role("heading", name="Antrag prüfen").is_visible()
    page.get_by_label("Anmerkung").fill("Impfpass fehlt noch")
    page.get_by_role("button", name="Abschließen").click()
    assert page.locator("#feld-vollstaendig-fehler").inner_text() == "Pflichtfeld: bitte ausfüllen."
    assert page.get_by_role("alert").get_by_role("link", name="Unterlagen vollständig: Pflichtfeld").is_visible()
    assert page.get_by_label("Anmerkung").input_value() == "Impfpass fehlt noch"
    shot(page, "03-task-invalid")
    assert axe_violations(page) == []

    page.get_by_label("Ja").check()
    page.get_by_role("button", name="Abschließen").click()
    page.wait_for_url(f"{server}/posteingang")
    assert page.get_by_text("abgeschlossen (MR-022.31-2026-00001)").is_visible()
    shot(page, "04-inbox-after-complete")
    assert axe_violations(page) == []

    page.goto(f"{server}/vorgaenge/{case_id}")
    page.wait_for_selector("#diagram[data-ready='1']", timeout=15000)
    assert page.locator(".djs-element.active").count() == 1  # Steuer festsetzen
    assert page.locator(".djs-element.done").count() >= 3
    assert page.get_by_role("cell", name="Aufgabe abgeschlossen").is_visible()
    shot(page, "05-case")
    assert axe_violations(page) == []
    assert errors == []


def test_documents_search_filters_absence_and_admin_pages_in_the_browser(server, page, users, web_rt):
    """Preview a citizen's PDF on the case page (opened by keyboard), search by applicant name, save a
    filter, record an absence; axe-core on every page, the admin pages included."""
    data = {"hundename": "Bello", "halter": {"familienname": "Beispiel", "vornamen": "Lena Marie"}}
    case_id = start(web_rt, data=data)[0]
    start(web_rt, count=2)
    add_document(web_rt, case_id, SAMPLE_PDF, "Antrag_Hundesteuer_Anmeldung.pdf", purpose="form")
    add_document(web_rt, case_id, PNG_1PX, "Foto.png", "image/png")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{server}/login")
    page.keyboard.press("Tab")  # the skip link comes first
    page.get_by_label("Benutzername").fill("anna")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.keyboard.press("Enter")  # the form works without a mouse
    page.wait_for_url(f"{server}/posteingang")

    page.get_by_label("Aktenzeichen oder Name").fill("beisp")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=beisp**")
    assert page.locator("table.tasks tbody tr").count() == 1
    assert page.get_by_role("cell", name="Lena Marie Beispiel").is_visible()
    page.get_by_label("Aktuellen Filter speichern als").fill("Familie Beispiel")
    page.get_by_role("button", name="Speichern").click()
    assert page.get_by_role("link", name="Familie Beispiel").is_visible()
    shot(page, "06-inbox-search-saved-filter")
    assert axe_violations(page) == []

    page.goto(f"{server}/vorgaenge/{case_id}")
    summary = page.locator("summary", has_text="Vorschau").first
    summary.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('iframe.preview') !== null")
    with page.expect_response(lambda r: "/dokumente/" in r.url) as answer:
        page.locator("iframe.preview").scroll_into_view_if_needed()
    assert answer.value.status == 200
    page.wait_for_timeout(1500)  # chromium's PDF viewer draws the page inside the sandboxed frame
    assert any(f.url.startswith("chrome-extension://") for f in page.frames)  # the viewer, i.e. a real preview
    served = page.request.get(answer.value.url)  # the same request with the session: its headers
    assert served.headers["content-type"] == "application/pdf" and served.body() == SAMPLE_PDF
    assert served.headers["content-security-policy"].startswith("sandbox")
    assert served.headers["x-content-type-options"] == "nosniff"
    page.locator("#dokumente").scroll_into_view_if_needed()
    shot(page, "07-case-pdf-preview")
    assert axe_violations(page) == []

    page.goto(f"{server}/abwesenheit")
    page.get_by_label("von (erster Tag)").fill("2026-11-03")
    page.get_by_label("bis (letzter Tag)").fill("2026-11-06")
    page.get_by_label("Vertretung").select_option("bernd")
    page.get_by_role("button", name="Eintragen").click()
    assert page.get_by_text("Abwesenheit eingetragen.").is_visible()
    shot(page, "08-absence")
    assert axe_violations(page) == []

    page.get_by_role("button", name="Abmelden").click()
    page.goto(f"{server}/")
    assert axe_violations(page) == []
    page.goto(f"{server}/login")
    page.get_by_label("Benutzername").fill("root")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{server}/posteingang")
    for path, name in (("/uebersicht", "09-overview"), ("/protokoll/lesezugriffe", "10-reads")):
        page.goto(f"{server}{path}")
        shot(page, name)
        assert axe_violations(page) == [], path
    assert page.get_by_role("cell", name="Dokument geöffnet").first.is_visible()
    assert [e for e in errors if "Failed to load resource" not in e] == []
