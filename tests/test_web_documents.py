"""A case's documents: listed on the case page with preview and download, served sandboxed with the right
type, never to another tenant; every view of a case or document is in the admins' read log."""

import re

from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PNG_1PX, SAMPLE_PDF, add_document, csrf_of, login, open_task, start

from engine.blobs import blob_store
from engine.documents import safe_type
from engine.users import create_token


def test_case_page_lists_documents_with_preview_and_download(logged_in, web_rt):
    case_id = start(web_rt)[0]
    pdf = add_document(web_rt, case_id, SAMPLE_PDF, "Antrag Hundesteuer.pdf", purpose="form")
    png = add_document(web_rt, case_id, PNG_1PX, "Impfpass.png", "image/png")
    html_doc = add_document(web_rt, case_id, b"<script>alert(1)</script>", "<b>böse</b>.html", "text/html")
    page = logged_in.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    assert "Antrag Hundesteuer.pdf" in page and "(Antrag, application/pdf, 626 Byte)" in page
    assert f'<iframe class="preview" src="/vorgaenge/{case_id}/dokumente/{pdf}"' in page
    assert f'<img class="preview" src="/vorgaenge/{case_id}/dokumente/{png}"' in page
    assert f'href="/vorgaenge/{case_id}/dokumente/{html_doc}?download=1"' in page
    assert "&lt;b&gt;böse&lt;/b&gt;.html" in page and "<b>böse</b>" not in page
    assert f'src="/vorgaenge/{case_id}/dokumente/{html_doc}"' not in page  # no preview of active content


def test_documents_are_served_sandboxed_with_their_checked_type(logged_in, web_rt):
    case_id = start(web_rt)[0]
    pdf = add_document(web_rt, case_id, SAMPLE_PDF, "Antrag Hundesteuer.pdf")
    fake = add_document(web_rt, case_id, b"<html><script>alert(1)</script>", "rechnung.pdf")  # says PDF, is not
    svg = add_document(web_rt, case_id, b"<svg onload='alert(1)'/>", "bild.svg", "image/svg+xml")
    resp = logged_in.get(f"/vorgaenge/{case_id}/dokumente/{pdf}")
    assert resp.status_code == 200 and resp.data == SAMPLE_PDF and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Security-Policy"].startswith("sandbox")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Disposition"].startswith("inline")
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Frame-Options"] == "SAMEORIGIN"
    download = logged_in.get(f"/vorgaenge/{case_id}/dokumente/{pdf}?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert 'filename="Antrag Hundesteuer.pdf"' in download.headers["Content-Disposition"]
    for doc in (fake, svg):
        resp = logged_in.get(f"/vorgaenge/{case_id}/dokumente/{doc}")
        assert resp.mimetype == "application/octet-stream"
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert resp.headers["Content-Security-Policy"].startswith("sandbox")
    assert safe_type("image/png", PNG_1PX) == "image/png" and safe_type("image/png", SAMPLE_PDF) != "image/png"


def test_documents_of_other_cases_and_tenants_are_not_found(client, users, web_rt):
    mine, other_case = start(web_rt, count=2)
    theirs = start(web_rt, "wetzlar")[0]
    doc = add_document(web_rt, theirs, SAMPLE_PDF)
    own = add_document(web_rt, mine, SAMPLE_PDF)
    login(client, "anna")
    assert client.get(f"/vorgaenge/{theirs}/dokumente/{doc}").status_code == 404
    assert client.get(f"/vorgaenge/{mine}/dokumente/{doc}").status_code == 404  # right tenant, wrong case
    assert client.get(f"/vorgaenge/{other_case}/dokumente/{own}").status_code == 404
    assert client.get(f"/vorgaenge/{mine}/dokumente/{own}").status_code == 200
    token = create_token(web_rt, "wim")
    api = client.get(f"/api/v1/cases/{mine}/documents/{own}", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 404 and api.is_json
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    assert client.get(f"/vorgaenge/{mine}/dokumente/{own}").status_code == 302  # to the login


def test_api_serves_documents_and_refuses_a_damaged_one(client, users, web_rt):
    case_id = start(web_rt)[0]
    doc = add_document(web_rt, case_id, SAMPLE_PDF)
    headers = {"Authorization": f"Bearer {create_token(web_rt, 'anna')}"}
    resp = client.get(f"/api/v1/cases/{case_id}/documents/{doc}", headers=headers)
    assert resp.status_code == 200 and resp.data == SAMPLE_PDF and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Security-Policy"].startswith("sandbox")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/api/v1/cases/{case_id}/documents/{doc}").status_code == 401
    store = blob_store(web_rt)
    path = store.path(store.put(SAMPLE_PDF))
    path.chmod(0o644)
    path.write_bytes(SAMPLE_PDF + b"changed")
    damaged = client.get(f"/api/v1/cases/{case_id}/documents/{doc}", headers=headers)
    assert damaged.status_code == 410 and "beschädigt" in damaged.get_json()["error"]


def test_reads_of_personal_data_are_logged_for_admins(client, users, web_rt, clock):
    case_id = start(web_rt)[0]
    doc = add_document(web_rt, case_id, SAMPLE_PDF, "Antrag.pdf")
    login(client, "anna")
    client.get(f"/vorgaenge/{case_id}")
    client.get(f"/aufgaben/{open_task(web_rt, case_id)['id']}")
    client.get(f"/vorgaenge/{case_id}/dokumente/{doc}")
    assert client.get("/protokoll/lesezugriffe").status_code == 403  # caseworkers do not read the log
    headers = {"Authorization": f"Bearer {create_token(web_rt, 'bernd')}"}
    client.get(f"/api/v1/cases/{case_id}", headers=headers)
    client.get(f"/api/v1/cases/{case_id}/documents/{doc}", headers=headers)
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    login(client, "root")
    page = client.get("/protokoll/lesezugriffe").get_data(as_text=True)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\w+)</td><td>([^<]+)</td>", page)
    assert [(who, what) for _, who, what in rows] == [
        ("bernd", "Dokument geöffnet"), ("bernd", "Vorgang angesehen"), ("anna", "Dokument geöffnet"),
        ("anna", "Aufgabe angesehen"), ("anna", "Vorgang angesehen")]
    assert rows[0][0] == "02.11.2026, 10:00" and "Programmschnittstelle" in page and "Antrag.pdf" in page
    assert "5 Einträge" in page
    assert "0 Einträge" in client.get(f"/protokoll/lesezugriffe?vorgang={case_id + 1}").get_data(as_text=True)
    assert "Lesezugriffe" in client.get("/posteingang").get_data(as_text=True)  # in the admin's navigation
