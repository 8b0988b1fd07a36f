"""Cases and tasks through the engine API and the ``ozgflow`` command, each call its own process."""

import json
import re
from datetime import UTC, datetime

import pytest
from conftest import DATA, ROOT

from engine.cases import complete_task, get_case, list_cases, list_tasks, start_case
from engine.deploy import bundles_from_paths, deploy
from engine.errors import AlreadyCompleted, FormInvalid, NotFound


@pytest.fixture
def two_tasks(rt):
    deploy(rt, bundles_from_paths([DATA / "two_tasks"]))
    return rt


def test_start_complete_finish(two_tasks):
    rt = two_tasks
    [started] = start_case(rt, "two_tasks", "marburg", {"applicant": "Lena Beispiel"}, actor="anna")
    assert started["state"] == "waiting"
    assert re.fullmatch(r"MR-000-\d{4}-00001", started["aktenzeichen"])
    [a] = list_tasks(rt, case_id=started["id"])
    assert (a["element_id"], a["title"], a["groups"]) == ("Task_A", "First step", ["team"])
    with pytest.raises(FormInvalid) as bad:
        complete_task(rt, a["id"], "anna", {"amount": "zwölf"})
    assert "amount" in bad.value.errors
    with pytest.raises(FormInvalid) as missing:
        complete_task(rt, a["id"], "anna", {})
    assert "amount" in missing.value.errors
    assert complete_task(rt, a["id"], "anna", {"amount": 21})["state"] == "waiting"
    [b] = list_tasks(rt, case_id=started["id"])
    assert b["element_id"] == "Task_B"
    assert complete_task(rt, b["id"], "bob")["state"] == "completed"
    case = get_case(rt, started["id"])
    assert case["state"] == "completed" and case["tasks"] == []
    assert case["data"]["doubled"] == 42 and case["data"]["applicant"] == "Lena Beispiel"
    actions = [(h["actor"], h["action"], h["element_id"]) for h in case["history"]]
    assert actions[0] == ("anna", "case_started", None)
    assert ("anna", "task_completed", "Task_A") in actions
    assert ("system", "script_run", "Script_Double") in actions
    assert ("bob", "task_completed", "Task_B") in actions
    assert actions[-1] == ("system", "state_changed", None)
    assert case["history"][-1]["old"] == "waiting" and case["history"][-1]["new"] == "completed"
    amount = [h for h in case["history"] if h["action"] == "variable_set" and h["new"] == {"amount": 21}]
    assert amount and amount[0]["actor"] == "anna" and amount[0]["element_id"] == "Task_A"
    with pytest.raises(AlreadyCompleted, match="already completed by anna"):
        complete_task(rt, a["id"], "carl", {"amount": 1})


def test_aktenzeichen_unique_per_tenant(two_tasks):
    rt = two_tasks
    mr = [c["aktenzeichen"] for c in start_case(rt, "two_tasks", "marburg", count=3)]
    wz = start_case(rt, "two_tasks", "wetzlar")[0]["aktenzeichen"]
    year = datetime.now(UTC).year
    assert mr == [f"MR-000-{year}-0000{i}" for i in (1, 2, 3)]
    assert wz == f"WZ-000-{year}-00001"
    assert [c["tenant"] for c in list_cases(rt, tenant="wetzlar")] == ["wetzlar"]
    assert len(list_cases(rt)) == 4 and len(list_cases(rt, limit=2)) == 2


def test_unknown_tenant_and_process(two_tasks):
    with pytest.raises(NotFound, match="unknown tenant 'berlin'"):
        start_case(two_tasks, "two_tasks", "berlin")
    with pytest.raises(NotFound, match="not deployed"):
        start_case(two_tasks, "nope", "marburg")


def test_failing_script_keeps_case_in_error(rt):
    from bpmn_snippets import script_process

    from engine.models import Bundle

    deploy(rt, [Bundle({"s.bpmn": script_process("x = 1 / 0")})])
    [case] = start_case(rt, "snippet", "limburg")
    assert case["state"] == "error" and "ZeroDivisionError" in case["error"]
    shown = get_case(rt, case["id"])
    assert shown["state"] == "error"
    assert shown["history"][-2]["action"] == "error"


def test_cli_case_lifecycle_each_call_a_fresh_process(cli, tmp_path, hundesteuer_data):
    cli("init")
    data = tmp_path / "antrag.json"
    data.write_text(json.dumps(hundesteuer_data), encoding="utf-8")
    started = cli.json("case", "start", "hundesteuer-anmeldung", "--tenant", "marburg", "--data", f"@{data}")
    assert set(started) == {"id", "aktenzeichen"}
    tasks = cli.json("task", "list", "--case", started["id"])
    assert [set(t) for t in tasks] == [{"id", "case_id", "element_id", "title", "groups", "assignee", "due",
                                        "follow_up"}]
    assert tasks[0]["title"] == "Antrag prüfen" and tasks[0]["groups"] == ["steuern"]
    bad = cli("task", "complete", tasks[0]["id"], "--user", "anna", "--data", '{"vollstaendig": "ja"}', check=False)
    assert bad.returncode == 1 and "vollstaendig" in bad.stderr and "Traceback" not in bad.stderr
    cli("task", "complete", tasks[0]["id"], "--user", "anna", "--data", '{"vollstaendig": true}')
    again = cli("task", "complete", tasks[0]["id"], "--user", "bob", "--data", '{"vollstaendig": true}', check=False)
    assert again.returncode == 1 and "already completed" in again.stderr
    [decide] = cli.json("task", "list", "--tenant", "marburg")
    assert decide["element_id"] == "Task_Festsetzen"
    cli("task", "complete", decide["id"], "--user", "bob", "--data", '{"entscheidung": "festgesetzt"}')
    cli("worker", "--once")  # Steuermarke, Sollstellung (background service calls), the tax notice's PDF
    [post] = cli.json("task", "list", "--tenant", "marburg")
    assert post["element_id"] == "Send_Steuerbescheid_Postversand"  # a tax notice goes by post
    cli("task", "complete", post["id"], "--user", "post", "--data", "{}")
    shown = cli.json("case", "show", started["id"])
    assert set(shown) >= {"id", "state", "process_id", "version", "tenant", "aktenzeichen", "data", "tasks", "history"}
    assert shown["state"] == "completed" and shown["data"]["steuer_berechnet"] == 90 == shown["data"]["jahressteuer"]
    assert all(set(h) == {"at", "actor", "action", "element_id", "old", "new"} for h in shown["history"])
    listed = cli.json("case", "list")
    assert listed == [{"id": started["id"], "state": "completed", "process_id": "hundesteuer-anmeldung",
                       "tenant": "marburg", "aktenzeichen": started["aktenzeichen"], "submission_id": None}]
    assert cli.json("task", "list") == []
    assert cli("verify", started["id"]).returncode == 0


def test_cli_init_is_idempotent_and_tenants_exist(cli):
    first = cli.json("init")
    second = cli.json("init")
    assert [v["new"] for v in first["versions"]] == [True] * len(first["versions"])
    assert [v["new"] for v in second["versions"]] == [False] * len(second["versions"])
    tenants = {t["id"]: t for t in cli.json("tenants")}
    assert list(tenants) == ["marburg", "wetzlar", "giessen", "limburg", "fulda"]
    assert tenants["giessen"]["ags"] == "06531005" and tenants["giessen"]["name"] == "Universitätsstadt Gießen"
    from engine.migrate import head_revision

    assert cli.json("db", "upgrade") == {"before": head_revision(), "after": head_revision()}


def test_cli_count_and_json_errors(cli):
    cli("deploy", DATA / "two_tasks")
    assert len(cli.json("case", "start", "two_tasks", "--tenant", "fulda", "--count", "3")["ids"]) == 3
    proc = cli("case", "show", "999", "--json", check=False)
    assert proc.returncode == 1 and json.loads(proc.stdout) == {"error": "no case 999"}


def test_concurrent_completion_exactly_one_wins(cli):
    cli("deploy", DATA / "two_tasks")
    for _round in range(3):
        case = cli.json("case", "start", "two_tasks", "--tenant", "marburg")
        [task] = cli.json("task", "list", "--case", case["id"])
        procs = [cli.popen("task", "complete", task["id"], "--user", f"user{i}", "--data", '{"amount": 1}')
                 for i in range(4)]
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        codes = sorted(r[0] for r in results)
        assert codes == [0, 1, 1, 1], results
        for code, _out, err in results:
            assert "Traceback" not in err and "locked" not in err
            if code:
                assert "already completed" in err
        shown = cli.json("case", "show", case["id"])
        assert [h["action"] for h in shown["history"]].count("task_completed") == 1
        assert len(shown["tasks"]) == 1 and shown["tasks"][0]["element_id"] == "Task_B"
        assert cli("verify", case["id"]).returncode == 0


def test_every_shipped_model_has_examples():
    for model in (ROOT / "processes").iterdir():
        if model.is_dir():
            assert list((model / "tests").glob("*.json")), f"{model.name} has no example cases"
