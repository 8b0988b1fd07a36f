"""The inbox: who sees which tasks, order, overdue, filters, counts, paging, claim / release / assign."""

import re

from sqlalchemy import update
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import csrf_of, login, open_task, start

from engine.audit import history
from engine.cases import list_tasks
from engine.schema import Task


def task_ids(html):
    return re.findall(r'href="/aufgaben/([0-9a-f-]{36})"', html)


def logout(client):
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})


def test_inbox_shows_my_groups_tasks_of_my_tenant_only(client, users, web_rt):
    mr = start(web_rt, "marburg", count=2)
    wz = start(web_rt, "wetzlar")
    login(client, "anna")
    html = client.get("/posteingang").get_data(as_text=True)
    assert sorted(task_ids(html)) == sorted(open_task(web_rt, c)["id"] for c in mr)
    assert "MR-022.31-2026-00001" in html and "WZ-" not in html
    logout(client)
    login(client, "wim")
    html = client.get("/posteingang").get_data(as_text=True)
    assert task_ids(html) == [open_task(web_rt, wz[0])["id"]] and "MR-" not in html
    logout(client)
    login(client, "carla")  # Marburg, but not in group "steuern"
    assert task_ids(client.get("/posteingang").get_data(as_text=True)) == []


def test_soonest_due_first_and_overdue_marked(client, users, web_rt, clock):
    first = start(web_rt)[0]
    clock.advance(days=3)
    second = start(web_rt)[0]
    clock.advance(days=28)  # the first task (due after Marburg's processing deadline, 30 days) is overdue now,
    #                         the second is not
    login(client, "anna")
    html = client.get("/posteingang").get_data(as_text=True)
    assert task_ids(html) == [open_task(web_rt, first)["id"], open_task(web_rt, second)["id"]]
    rows = re.findall(r'<tr class="([^"]*)">', html)
    assert rows == ["overdue", ""] and html.count("überfällig</strong>") == 1
    overdue = client.get("/posteingang?overdue=1").get_data(as_text=True)
    assert task_ids(overdue) == [open_task(web_rt, first)["id"]]


def test_filters_counts_and_search(client, users, web_rt):
    a, b, c = start(web_rt, count=3)
    login(client, "anna")
    claim_url = f"/aufgaben/{open_task(web_rt, a)['id']}/uebernehmen"
    client.post(claim_url, data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    html = client.get("/posteingang").get_data(as_text=True)
    counts = re.findall(r'(?:scope=(\w+)|(Überfällig))[^<]*<span class="count">(\d+)', html)
    assert [(s, n) for s, _, n in counts] == [("all", "3"), ("mine", "1"), ("groups", "3"), ("unassigned", "2"),
                                              ("all", "0")]  # the last one: overdue
    assert task_ids(client.get("/posteingang?scope=mine").get_data(as_text=True)) == [open_task(web_rt, a)["id"]]
    assert len(task_ids(client.get("/posteingang?scope=unassigned").get_data(as_text=True))) == 2
    found = client.get("/posteingang?q=mr-022.31-2026-00002").get_data(as_text=True)
    assert task_ids(found) == [open_task(web_rt, b)["id"]]
    assert task_ids(client.get("/posteingang?process=hundesteuer-anmeldung&task=Task_AntragPruefen")
                    .get_data(as_text=True)) != []
    assert task_ids(client.get("/posteingang?task=Task_Festsetzen").get_data(as_text=True)) == []
    assert "Keine offenen Aufgaben" in client.get("/posteingang?q=XX").get_data(as_text=True)


def test_paging(app, client, users, web_rt):
    app.config["INBOX_PAGE_SIZE"] = 2
    start(web_rt, count=5)
    login(client, "anna")
    pages = [task_ids(client.get(f"/posteingang?page={p}").get_data(as_text=True)) for p in (1, 2, 3)]
    assert [len(p) for p in pages] == [2, 2, 1] and len(set(sum(pages, []))) == 5
    html = client.get("/posteingang?page=2").get_data(as_text=True)
    assert "Seite 2 von 3" in html and 'rel="next"' in html and 'rel="prev"' in html


def test_claim_and_release_are_audited_and_exclusive(client, users, web_rt):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    login(client, "anna")
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    assert client.post(f"/aufgaben/{tid}/uebernehmen", data={"csrf_token": token}).status_code == 302
    assert open_task(web_rt, case_id)["assignee"] == "anna"
    logout(client)
    login(client, "bernd")
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    resp = client.post(f"/aufgaben/{tid}/uebernehmen", data={"csrf_token": token}, follow_redirects=True)
    assert "bereits von anna übernommen" in resp.get_data(as_text=True)
    client.post(f"/aufgaben/{tid}/freigeben", data={"csrf_token": token})
    assert open_task(web_rt, case_id)["assignee"] == "anna"  # not bernd's to release
    logout(client)
    login(client, "anna")
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    client.post(f"/aufgaben/{tid}/freigeben", data={"csrf_token": token})
    assert open_task(web_rt, case_id)["assignee"] is None
    with web_rt.reader.connect() as conn:
        actions = [(e["actor"], e["action"]) for e in history(conn, case_id)][-2:]
    assert actions == [("anna", "task_claimed"), ("anna", "task_unclaimed")]


def test_claim_needs_csrf(logged_in, web_rt):
    tid = open_task(web_rt, start(web_rt)[0])["id"]
    assert logged_in.post(f"/aufgaben/{tid}/uebernehmen").status_code == 400
    assert open_task(web_rt, 1)["assignee"] is None


def test_team_lead_assigns_many_at_once(client, users, web_rt):
    cases = start(web_rt, count=3)
    tids = [open_task(web_rt, c)["id"] for c in cases]
    login(client, "lena")
    html = client.get("/posteingang").get_data(as_text=True)
    assert 'name="task_ids"' in html and '<option value="bernd">' in html and "wim" not in html
    resp = client.post("/aufgaben/zuweisen", data={"csrf_token": csrf_of(html), "task_ids": tids[:2],
                                                   "assignee": "bernd"}, follow_redirects=True)
    assert "2 Aufgabe(n) an bernd zugewiesen" in resp.get_data(as_text=True)
    assert [open_task(web_rt, c)["assignee"] for c in cases] == ["bernd", "bernd", None]
    client.post("/aufgaben/zuweisen", data={"csrf_token": csrf_of(html), "task_ids": tids[:1], "assignee": "anna"})
    with web_rt.reader.connect() as conn:
        last = history(conn, cases[0])[-1]
    assert last["action"] == "task_assigned" and last["actor"] == "lena"
    assert last["new"]["assignee"] == "anna" and last["old"] == {"assignee": "bernd"}
    resp = client.post("/aufgaben/zuweisen", data={"csrf_token": csrf_of(html), "task_ids": tids[:1],
                                                   "assignee": "wim"})
    assert resp.status_code == 404  # a Wetzlar user is no one a Marburg lead can assign to


def test_caseworkers_cannot_assign(logged_in, web_rt):
    tid = open_task(web_rt, start(web_rt)[0])["id"]
    html = logged_in.get("/posteingang").get_data(as_text=True)
    assert 'name="task_ids"' not in html
    resp = logged_in.post("/aufgaben/zuweisen", data={"csrf_token": csrf_of(html), "task_ids": [tid],
                                                      "assignee": "anna"})
    assert resp.status_code == 403


def test_other_tenants_tasks_cannot_be_touched(client, users, web_rt):
    tid = open_task(web_rt, start(web_rt, "marburg")[0])["id"]
    login(client, "wim")
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    assert client.post(f"/aufgaben/{tid}/uebernehmen", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/aufgaben/{tid}").status_code == 404
    assert client.get("/vorgaenge/1").status_code == 404
    assert "MR-022" not in client.get("/posteingang?q=MR-").get_data(as_text=True)


def test_admin_sees_every_tenant(client, users, web_rt):
    start(web_rt, "marburg")
    start(web_rt, "wetzlar")
    login(client, "root")
    html = client.get("/posteingang").get_data(as_text=True)
    assert len(task_ids(html)) == 2 and "(wetzlar)" in html


def test_titles_are_escaped(logged_in, web_rt):
    case_id = start(web_rt)[0]
    with web_rt.db.begin() as conn:
        conn.execute(update(Task).where(Task.case_id == case_id).values(title="<script>alert(1)</script>"))
    html = logged_in.get("/posteingang").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_paging_puts_tasks_without_due_date_last(app, client, users, web_rt, clock):
    app.config["INBOX_PAGE_SIZE"] = 2
    cases = []
    for _ in range(5):
        cases += start(web_rt)
        clock.advance(hours=1)
    with web_rt.db.begin() as conn:
        conn.execute(update(Task).where(Task.case_id.in_(cases[:2])).values(due_at=None))
    login(client, "anna")
    seen = sum((task_ids(client.get(f"/posteingang?page={p}").get_data(as_text=True)) for p in (1, 2, 3)), [])
    assert seen == [t["id"] for t in list_tasks(web_rt, tenant="marburg")]  # the CLI's order
    assert seen[-2:] == [open_task(web_rt, c)["id"] for c in cases[:2]]
