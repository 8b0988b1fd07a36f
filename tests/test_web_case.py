"""The case page: readable application data, German history, comments, the diagram and its markers."""

import json
import re

from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import csrf_of, login, open_task, start

from engine.audit import history, verify_chain
from engine.inbox import element_states


def test_case_page_shows_data_readably_and_history_in_german(logged_in, web_rt):
    case_id = start(web_rt, data={"hundename": "Bello", "gefaehrlicherHundNachHundeVO": False,
                                  "halter": {"name": "Erika Muster", "adresse": {"ort": "Marburg"}},
                                  "hunde": ["Bello", "Luna"]})[0]
    html = logged_in.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    assert "<h1>Vorgang MR-022.31-2026-00001</h1>" in html
    assert ('<dt>halter</dt><dd><dl class="data"><dt>name</dt><dd>Erika Muster</dd><dt>adresse</dt><dd>'
            '<dl class="data"><dt>ort</dt><dd>Marburg</dd></dl>') in html
    assert "<dt>gefaehrlicherHundNachHundeVO</dt><dd>Nein</dd>" in html
    assert "<li>Bello</li><li>Luna</li>" in html and "{&#34;" not in html and '{"hundename' not in html
    for words in ("Vorgang angelegt", "Automatischer Schritt ausgeführt", "Angabe gesetzt", "Status geändert"):
        assert words in html
    assert "steuer_berechnet: 90" in html and "wartet" in html
    assert "case_started" not in html and "variable_set" not in html
    # the city's settings copied into the case (fees, departments, letterhead) are configuration, not Antragsdaten
    assert web_rt.tenants.get("marburg").name in html  # the header names the city …
    assert "<dt>stadt</dt>" not in html and "<dt>abteilungen</dt>" not in html  # … the data does not list its settings
    task_html = logged_in.get(f"/aufgaben/{open_task(web_rt, case_id)['id']}").get_data(as_text=True)
    assert "<dt>halter</dt>" in task_html and "<dt>stadt</dt>" not in task_html


def test_comments_are_stored_audited_and_escaped(logged_in, web_rt):
    case_id = start(web_rt)[0]
    page = logged_in.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    resp = logged_in.post(f"/vorgaenge/{case_id}/kommentare",
                          data={"csrf_token": csrf_of(page), "text": "Rückruf <script>x()</script> vereinbart"})
    assert resp.status_code == 302
    html = logged_in.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    assert "Rückruf &lt;script&gt;x()&lt;/script&gt; vereinbart" in html and "<script>x()" not in html
    with web_rt.reader.connect() as conn:
        last = history(conn, case_id)[-1]
        assert verify_chain(conn, case_id)[0]
    assert (last["actor"], last["action"]) == ("anna", "comment_added")
    assert logged_in.post(f"/vorgaenge/{case_id}/kommentare", data={"text": "ohne Token"}).status_code == 400
    empty = logged_in.post(f"/vorgaenge/{case_id}/kommentare", data={"csrf_token": csrf_of(page), "text": " "},
                           follow_redirects=True)
    assert "Der Kommentar ist leer." in empty.get_data(as_text=True)


def test_diagram_is_served_by_the_app_with_markers(logged_in, web_rt):
    case_id = start(web_rt)[0]
    html = logged_in.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts == ["/static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js", "/static/case-diagram.js"]
    assert "<script>" not in html  # no inline script: the CSP allows 'self' only
    for url in scripts + ["/static/vendor/bpmn-js/bpmn-js.css", "/static/vendor/bpmn-js/diagram-js.css"]:
        assert logged_in.get(url).status_code == 200
    states = json.loads(re.search(r"data-states='([^']+)'", html).group(1))
    assert states == element_states(web_rt, case_id)
    assert states["active"] == ["Task_AntragPruefen"]
    assert {"StartEvent_Antrag", "Script_Angaben", "Rule_Steuersatz"} <= set(states["completed"])
    xml = logged_in.get(f"/vorgaenge/{case_id}/diagramm.bpmn")
    assert xml.status_code == 200 and xml.mimetype == "application/xml"
    assert b'id="Task_AntragPruefen"' in xml.data and b"BPMNDiagram" in xml.data


def test_other_tenants_cases_do_not_exist(client, users, web_rt):
    case_id = start(web_rt, "marburg")[0]
    login(client, "wim")
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    assert client.get(f"/vorgaenge/{case_id}").status_code == 404
    assert client.get(f"/vorgaenge/{case_id}/diagramm.bpmn").status_code == 404
    assert client.post(f"/vorgaenge/{case_id}/kommentare", data={"csrf_token": token, "text": "x"}).status_code == 404
    assert client.get("/vorgaenge/999").status_code == 404
    with web_rt.reader.connect() as conn:
        assert all(e["actor"] != "wim" for e in history(conn, case_id))
