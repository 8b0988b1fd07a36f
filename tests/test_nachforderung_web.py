"""The Nachforderung from outside: ``ozgflow init`` deploys called models before their callers, and the
answer through ``POST /api/v1/messages`` (a caseworker's token) ends the waiting Nachforderung."""

import shutil
from dataclasses import replace

import pytest
from conftest import ROOT, make_runtime
from test_nachforderung import CALLER, complete, open_tasks, through_dispatch, versions

from engine.cases import get_case, start_case
from engine.setup import initialise
from engine.users import add_user, create_token
from web import create_app


@pytest.fixture
def processes(tmp_path):
    """A processes folder whose caller sorts before the model it calls (``aaa-`` < ``nachforderung``)."""
    folder = tmp_path / "processes"
    shutil.copytree(ROOT / "processes" / "nachforderung", folder / "nachforderung")
    (folder / "aaa-antrag").mkdir()
    (folder / "aaa-antrag" / "antrag.bpmn").write_text(CALLER.format(pid="antrag_mit_nachforderung",
                                                                     called="nachforderung"))
    return folder


@pytest.fixture
def init_rt(db_url, tmp_path, processes):
    runtime = make_runtime(db_url, tmp_path / "var")
    runtime.settings = replace(runtime.settings, processes_dir=processes)
    yield runtime
    runtime.close()


def test_init_deploys_called_models_first_and_is_idempotent(init_rt):
    first = initialise(init_rt)
    assert [v["process_id"] for v in first["versions"]] == ["nachforderung", "antrag_mit_nachforderung"]
    [caller] = versions(init_rt, "antrag_mit_nachforderung")
    assert caller["meta"]["calls"]["nachforderung"]["version"] == 1
    again = initialise(init_rt)
    assert [v["new"] for v in again["versions"]] == [False, False]


def test_answer_through_the_message_api(init_rt):
    initialise(init_rt)
    add_user(init_rt, "anna", "marburg", "caseworker", "richtig-geheim-1", ["steuern"])
    add_user(init_rt, "wim", "wetzlar", "caseworker", "richtig-geheim-1", ["steuern"])
    client = create_app({"TESTING": True}, runtime=init_rt).test_client()
    [case] = start_case(init_rt, "antrag_mit_nachforderung", "marburg", {})
    complete(init_rt, case["id"], "Pruefen", {"vollstaendig": False})
    complete(init_rt, case["id"], "Nachforderung_Schreiben", {"nachforderung_text": "Meldebescheinigung",
                                                             "nachforderung_frist_tage": 14})
    through_dispatch(init_rt, case["id"])
    body = {"name": "unterlagen_nachgereicht", "correlation": {"aktenzeichen": case["aktenzeichen"]},
            "payload": {"documents": [{"filename": "Meldebescheinigung.pdf", "eingang": "Post"}]}}
    other = client.post("/api/v1/messages", json=body,
                        headers={"Authorization": f"Bearer {create_token(init_rt, 'wim')}"})
    assert other.status_code == 404, "another city's token does not reach the case"
    sent = client.post("/api/v1/messages", json=body,
                       headers={"Authorization": f"Bearer {create_token(init_rt, 'anna')}"})
    assert sent.status_code == 202 and sent.get_json()["status"] == "delivered"
    found = get_case(init_rt, case["id"])
    assert found["data"]["nachforderung_ergebnis"] == "eingegangen"
    assert found["data"]["nachgereichte_unterlagen"] == body["payload"]["documents"]
    assert list(open_tasks(init_rt, case["id"])) == ["Pruefen"]
