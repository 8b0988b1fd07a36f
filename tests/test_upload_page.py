"""The designers' page /modelle: upload form (CSRF), validation report, models and versions, roles."""

import io
import re

from bpmn_snippets import user_task_process, with_step
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD, csrf_of, login

from engine.users import add_user


def designer(client, web_rt):
    add_user(web_rt, "dora", "marburg", "designer", PASSWORD, [])
    assert login(client, "dora").status_code == 302
    return client


def upload(client, files, token=None):
    if token is None:
        token = csrf_of(client.get("/modelle").get_data(as_text=True))
    data = {"csrf_token": token, "files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/modelle", data=data, content_type="multipart/form-data")


def test_caseworker_gets_403_and_no_link(logged_in):
    assert logged_in.get("/modelle").status_code == 403
    assert 'href="/modelle"' not in logged_in.get("/posteingang").get_data(as_text=True)


def test_designer_finds_the_page_in_the_navigation(client, web_rt):
    designer(client, web_rt)
    assert 'href="/modelle">Prozessmodelle</a>' in client.get("/posteingang").get_data(as_text=True)


def test_designer_uploads_and_sees_the_new_version(client, web_rt):
    designer(client, web_rt)
    resp = upload(client, [("p.bpmn", user_task_process("mein-prozess"))])
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Geprüft und gespeichert" in html and "mein-prozess, Version 1" in html
    assert "dora" in html  # the versions table says who uploaded it


def test_refused_upload_shows_the_report_and_stores_nothing(client, web_rt):
    designer(client, web_rt)
    bad = with_step('    <bpmn:scriptTask id="Step"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>'
                    '<bpmn:script>import os</bpmn:script></bpmn:scriptTask>', pid="boese")
    resp = upload(client, [("bad.bpmn", bad)])
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Prüfbericht" in html and "nichts gespeichert" in html
    assert re.search(r"<td>bad.bpmn</td><td>7</td><td>—</td>\s*<td>Step</td>", html)
    assert "imports are not allowed" in html
    assert "boese" not in html.split("Modelle und Versionen")[1]


def test_upload_without_csrf_token_refused(client, web_rt):
    designer(client, web_rt)
    resp = upload(client, [("p.bpmn", user_task_process("ohne-token"))], token="falsch")
    assert resp.status_code == 400
    assert "ohne-token" not in client.get("/modelle").get_data(as_text=True)


def test_too_large_upload_413_with_a_german_message(app, client, web_rt):
    designer(client, web_rt)
    app.config.update(UPLOAD_MAX_FILE_BYTES=1000)
    resp = upload(client, [("p.bpmn", user_task_process("gross").ljust(1500))])
    assert resp.status_code == 413 and "zu groß" in resp.get_data(as_text=True)
