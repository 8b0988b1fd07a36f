"""Letters in the web inbox: the preview of a task with ``preview_letter`` (rendered from the case's current
data, served sandboxed like a document, never to another tenant) and the Postversand task with the stored
PDF to print, whose completion dispatches the letter."""

from test_letters import LETTER, process
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import csrf_of, login

from engine.cases import get_case, list_tasks, start_case
from engine.deploy import deploy
from engine.dispatch import list_dispatches
from engine.jobs import Worker
from engine.models import Bundle


def deploy_brief(rt):
    files = {"brief.bpmn": process(email_allowed="false", lane="steuern"), "letters/bescheid.html": LETTER.encode()}
    deploy(rt, [Bundle(files, source="brief")])
    [case] = start_case(rt, "brief", "marburg", {"name": "Erika Vorschau", "betrag": 12})
    return case["id"], list_tasks(rt, case_id=case["id"])[0]


def test_task_page_previews_the_letter_sandboxed(logged_in, web_rt, client):
    case_id, task = deploy_brief(web_rt)
    page = logged_in.get(f"/aufgaben/{task['id']}").get_data(as_text=True)
    url = f"/aufgaben/{task['id']}/brief"
    assert f'src="{url}"' in page and "Vorschau des Briefs: Prüfen" in page
    resp = logged_in.get(url)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF")
    assert resp.headers["Content-Security-Policy"].startswith("sandbox")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    logged_in.get("/logout")
    login(client, "wim")  # Wetzlar: neither the task nor its letter exist for him
    assert client.get(url).status_code == 404


def test_postversand_task_shows_the_stored_pdf_and_dispatches_on_completion(logged_in, web_rt):
    case_id, task = deploy_brief(web_rt)
    page = logged_in.get(f"/aufgaben/{task['id']}").get_data(as_text=True)
    assert logged_in.post(f"/aufgaben/{task['id']}", data={"action": "complete",
                                                          "csrf_token": csrf_of(page)}).status_code == 302
    Worker(web_rt).run_due()
    [post] = list_tasks(web_rt, case_id=case_id)
    assert post["element_id"] == "Senden_Postversand" and post["groups"] == ["steuern"]
    [row] = list_dispatches(web_rt, case_id=case_id)
    page = logged_in.get(f"/aufgaben/{post['id']}").get_data(as_text=True)
    doc_url = f"/vorgaenge/{case_id}/dokumente/{row['document_id']}"
    assert "Brief zum Versand" in page and f'src="{doc_url}"' in page
    pdf = logged_in.get(doc_url)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    case_page = logged_in.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    assert "bescheid.pdf" in case_page and f'src="{doc_url}"' in case_page  # letters are case documents
    assert logged_in.post(f"/aufgaben/{post['id']}", data={"action": "complete",
                                                          "csrf_token": csrf_of(page)}).status_code == 302
    case = get_case(web_rt, case_id)
    assert case["state"] == "completed" and case["data"]["letters"]["bescheid"]["channel"] == "post"
    [row] = list_dispatches(web_rt, case_id=case_id)
    assert row["dispatched_at"] == web_rt.clock()
    assert [h["actor"] for h in case["history"] if h["action"] == "letter_dispatched"] == ["anna"]
