"""Inbox search by applicant name, saved filters, and the inbox's two ways of reading a page (checked
against a plain reading of the task table)."""

import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import csrf_of, login, open_task, start

import engine.inbox as inbox
from engine.applicants import applicant_name, words_of
from engine.inbox import SCOPES, InboxFilter, list_inbox
from engine.schema import CaseApplicant, SavedFilter, Task, TaskGroup
from engine.users import get_user


def task_ids(html):
    return re.findall(r'href="/aufgaben/([0-9a-f-]{36})"', html)


def hund(familienname, vornamen):
    return {"hundename": "Bello", "halter": {"familienname": familienname, "vornamen": vornamen}}


def test_applicant_names_from_the_well_known_places():
    assert applicant_name(hund("Beispiel", "Lena Marie")) == "Lena Marie Beispiel"
    assert applicant_name({"betriebsinhaber": {"familienname": "Yilmaz", "vornamen": "Deniz"}}) == "Deniz Yilmaz"
    assert applicant_name({"antragsteller": {"familienname": "Mustermann", "vornamen": "Jonas"}}) == "Jonas Mustermann"
    assert applicant_name({"halter": {"name": "Erika Muster"}}) == "Erika Muster"
    assert applicant_name({"hund": {"name": "Bello"}}) is None and applicant_name(None) is None
    assert words_of("Jörg Müller-Lüdenscheidt") == ["jorg", "joerg", "muller", "mueller", "ludenscheidt",
                                                    "luedenscheidt"]
    assert words_of("Weiß") == ["weiss"]


def test_search_by_applicant_name_finds_only_my_tenants_cases(client, users, web_rt):
    lena, jonas = start(web_rt, data=hund("Beispiel", "Lena Marie"))[0], start(web_rt, data=hund("Müller", "Jonas"))[0]
    start(web_rt, "wetzlar", data=hund("Beispiel", "Lena"))
    with web_rt.reader.connect() as conn:
        stored = dict(conn.execute(select(CaseApplicant.case_id, CaseApplicant.name)).all())
    assert stored[lena] == "Lena Marie Beispiel" and stored[jonas] == "Jonas Müller" and len(stored) == 3
    login(client, "anna")
    assert "Lena Marie Beispiel" in client.get("/posteingang").get_data(as_text=True)  # shown in the list
    for query, expected in (("Beispiel", [lena]), ("beisp", [lena]), ("lena beispiel", [lena]),
                            ("Mueller", [jonas]), ("muller", [jonas]), ("MÜLLER jo", [jonas]),
                            ("Lena Müller", []), ("Schmidt", []), ("MR-022.31-2026-00002", [jonas])):
        found = task_ids(client.get("/posteingang", query_string={"q": query}).get_data(as_text=True))
        assert found == [open_task(web_rt, c)["id"] for c in expected], query
    # the API searches the same way, and never across tenants
    wim = get_user(web_rt, name="wim")
    assert [t["case_id"] for t in list_inbox(web_rt, wim, InboxFilter(query="Beispiel"))["items"]] == [3]


def test_saved_filters_save_list_apply_delete(client, users, web_rt):
    start(web_rt, count=2)
    login(client, "anna")
    page = client.get("/posteingang?scope=unassigned&overdue=1").get_data(as_text=True)
    assert "Noch keine gespeicherten Filter" in page
    resp = client.post("/posteingang/filter", data={"csrf_token": csrf_of(page), "name": "Überfällige <frei>",
                                                    "scope": "unassigned", "overdue": "1", "page": "3",
                                                    "evil": "x", "back": "/posteingang?scope=unassigned"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/posteingang?scope=unassigned"
    page = client.get("/posteingang").get_data(as_text=True)
    assert "Überfällige &lt;frei&gt;" in page and "<frei>" not in page
    assert 'href="/posteingang?scope=unassigned&amp;overdue=1"' in page  # applying = following the link
    with web_rt.reader.connect() as conn:
        (fid, query), = conn.execute(select(SavedFilter.id, SavedFilter.query)).all()
    assert query == "scope=unassigned&overdue=1"
    # saving under the same name replaces; an empty name is refused
    client.post("/posteingang/filter", data={"csrf_token": csrf_of(page), "name": "Überfällige <frei>", "q": "MR"})
    resp = client.post("/posteingang/filter", data={"csrf_token": csrf_of(page), "name": " "}, follow_redirects=True)
    assert "Bitte geben Sie dem Filter einen Namen" in resp.get_data(as_text=True)
    with web_rt.reader.connect() as conn:
        (fid, query), = conn.execute(select(SavedFilter.id, SavedFilter.query)).all()
    assert query == "q=MR"
    # somebody else's filter is not found; one's own is deleted
    client.post("/logout", data={"csrf_token": csrf_of(page)})
    login(client, "bernd")
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    assert client.post(f"/posteingang/filter/{fid}/loeschen", data={"csrf_token": token}).status_code == 404
    client.post("/logout", data={"csrf_token": token})
    login(client, "anna")
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    assert client.post(f"/posteingang/filter/{fid}/loeschen", data={"csrf_token": token}).status_code == 302
    assert "Noch keine gespeicherten Filter" in client.get("/posteingang").get_data(as_text=True)
    assert client.post("/posteingang/filter", data={"name": "ohne csrf"}).status_code == 400


def _reference(rt, person, f, now, stands_in_for=()):
    """The inbox computed the plain way: every open task row, filtered and sorted in Python."""
    with rt.reader.connect() as conn:
        tasks = conn.execute(select(Task).where(Task.state == "open")).mappings().all()
        groups = {}
        for tid, g in conn.execute(select(TaskGroup.task_id, TaskGroup.group_name)).all():
            groups.setdefault(tid, set()).add(g)
    def visible(t):
        if person.is_teamlead:
            return person.is_admin and not f.tenant or t["tenant"] == (f.tenant or person.tenant)
        return t["tenant"] == person.tenant and (t["assignee"] in (person.name, *stands_in_for)
                                                 or bool(groups.get(t["id"], set()) & set(person.groups)))
    def in_scope(t, scope):
        return {"all": True, "mine": t["assignee"] == person.name, "unassigned": t["assignee"] is None,
                "groups": bool(groups.get(t["id"], set()) & set(person.groups))}[scope]
    rows = [t for t in tasks if visible(t) and (not f.process or t["process_id"] == f.process)]
    counts = {s: sum(1 for t in rows if in_scope(t, s)) for s in SCOPES}
    counts["overdue"] = sum(1 for t in rows if t["due_at"] is not None and t["due_at"] < now)
    chosen = [t for t in rows if in_scope(t, f.scope) and (not f.overdue or (t["due_at"] and t["due_at"] < now))]
    chosen.sort(key=lambda t: (t["due_at"] is None, t["due_at"] or now, t["created_at"], t["id"]))
    return counts, [t["id"] for t in chosen]


@pytest.mark.parametrize("limit", [0, 10 ** 9], ids=["set-read", "tenant-read"])
def test_both_ways_of_reading_agree_with_the_plain_reading(users, web_rt, clock, monkeypatch, limit):
    monkeypatch.setattr(inbox, "TENANT_READ_LIMIT", limit)
    rng = random.Random(7)
    cases = start(web_rt, count=30) + start(web_rt, "wetzlar", count=5)
    with web_rt.db.begin() as conn:  # vary assignees, groups and due dates (some without one)
        for case_id in cases:
            tid = open_task(web_rt, case_id)["id"]
            due = None if rng.random() < 0.2 else clock.now + timedelta(days=rng.randint(-5, 20))
            conn.execute(update(Task).where(Task.id == tid).values(
                due_at=due, assignee=rng.choice([None, None, "anna", "bernd", "lena"])))
            if rng.random() < 0.3:
                conn.execute(insert(TaskGroup).values(task_id=tid, group_name="buergerbuero"))
    for name in ("anna", "carla", "lena", "wim"):
        person = get_user(web_rt, name=name)
        for f in (InboxFilter(per_page=7), InboxFilter(scope="unassigned", per_page=4),
                  InboxFilter(scope="groups", overdue=True, per_page=5), InboxFilter(scope="mine"),
                  InboxFilter(process="hundesteuer-anmeldung", per_page=50)):
            counts, expected = _reference(web_rt, person, f, clock.now)
            pages, got, page = None, [], 1
            while pages is None or page <= pages:
                result = list_inbox(web_rt, person, InboxFilter(**{**f.__dict__, "page": page}))
                assert result["counts"] == counts, (name, f)
                assert result["total"] == len(expected), (name, f)
                got += [t["id"] for t in result["items"]]
                pages, page = result["pages"], page + 1
            assert got == expected, (name, f)
