"""Versions: the diff between two versions, and moving running cases to a later version (preview, move)."""

from datetime import UTC, datetime, timedelta

import pytest
from chain_bpmn import chain, message, script, timer, user

from engine import moves
from engine.audit import verify_chain
from engine.cases import complete_task, get_case, list_tasks, start_case
from engine.deploy import deploy
from engine.jobs import Worker
from engine.messages import deliver
from engine.models import Bundle
from engine.versions import diff_versions, list_versions_detailed, version_info

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


def put(rt, pid, steps, **kw):
    return deploy(rt, [Bundle({f"{pid}.bpmn": chain(pid, steps, **kw)})], actor="designer1")


def tasks_of(rt, case_id):
    return [(t["element_id"], t["title"], t["groups"]) for t in list_tasks(rt, case_id=case_id)]


def complete_all(rt, case_id, data=None):
    for t in list_tasks(rt, case_id=case_id):
        complete_task(rt, t["id"], "bearbeiter", data or {})


def test_diff_names_added_removed_and_changed_elements_by_id(rt):
    put(rt, "antrag", [user("A", "Prüfen", "team"), script("S", "Rechnen", "x = 1"), user("B", "Bescheid")])
    put(rt, "antrag", [user("A", "Prüfen", "leitung"), script("S", "Rechnen", "x = 2"), user("C", "Neu")])
    d = diff_versions(rt, "antrag", 1, 2)
    assert [e["id"] for e in d["added"]] == ["C"]
    assert [e["id"] for e in d["removed"]] == ["B"]
    changed = {e["id"]: [c["what"] for c in e["changes"]] for e in d["changed"]}
    assert changed["A"] == ["content"]  # the candidate groups in the extension elements
    assert "leitung" in d["changed"][0]["changes"][0]["new"]
    assert changed["S"] == ["content"]  # the script
    assert changed["Flow_3"] == ["attribute targetRef"] and changed["Flow_4"] == ["attribute sourceRef"]
    assert "StartEvent_1" not in changed and "Flow_1" not in changed
    # a diagram-only change (moving shapes) is no change of the process
    xml = chain("antrag", [user("A", "Prüfen", "leitung"), script("S", "Rechnen", "x = 2"), user("C", "Neu")])
    deploy(rt, [Bundle({"antrag.bpmn": xml.replace(b'y="80"', b'y="200"')})])
    d = diff_versions(rt, "antrag", 2, 3)
    assert d["added"] == d["removed"] == d["changed"] == [] and d["unchanged"] > 5
    # a type change and a name change
    put(rt, "antrag", [("manualTask", "A", "Prüfen (Papier)", "", ""), script("S", "Rechnen", "x = 2"),
                       user("C", "Neu")])
    [a] = [e for e in diff_versions(rt, "antrag", 3, 4)["changed"] if e["id"] == "A"]
    assert [c["what"] for c in a["changes"]][:2] == ["type", "name"]


def test_move_preview_and_move_follow_the_new_path(rt):
    put(rt, "umzug", [user("A", "Prüfen"), user("B", "Bescheid")])
    at_a = start_case(rt, "umzug", "giessen")[0]["id"]
    at_b = start_case(rt, "umzug", "marburg")[0]["id"]
    complete_all(rt, at_b)
    [task_b] = list_tasks(rt, case_id=at_b)
    put(rt, "umzug", [user("A", "Prüfen neu", "team"), script("S", "Rechnen", "x = 42"), user("B", "Bescheid")])
    put(rt, "umzug", [user("A", "Prüfen")])  # version 3 drops B
    put(rt, "umzug", [user("A", "Prüfen"), user("C", "Anders")])  # version 4 has C where B was

    info = {v["version"]: v for v in list_versions_detailed(rt, "umzug")}
    assert info[1]["cases"]["open"] == 2 and info[1]["cases"]["by_tenant"] == {"giessen": 1, "marburg": 1}
    assert info[4]["starts_new_cases"] and not info[1]["starts_new_cases"]
    [renamed] = [c for c in moves.preview(rt, "umzug", 1, 4)["cases"] if c["case_id"] == at_b]
    assert renamed["reasons"] == ["has a token on B (Bescheid), whose id is C in version 4 "
                                  "(a renamed element cannot be followed)"]

    p3 = moves.preview(rt, "umzug", 1, 3)
    verdict = {c["case_id"]: c for c in p3["cases"]}
    assert verdict[at_a]["can_move"] and not verdict[at_b]["can_move"]
    assert "B (Bescheid), which version 3 does not have" in verdict[at_b]["reasons"][0]
    assert (p3["movable"], p3["blocked"]) == (1, 1)

    p2 = moves.preview(rt, "umzug", 1, 2)
    assert p2["movable"] == 2
    assert get_case(rt, at_a)["version"] == 1  # a preview changes nothing

    result = moves.move(rt, "umzug", 1, 2, "admin1")
    assert result["moved"] == 2 and all(c["moved"] for c in result["cases"])
    # open tasks keep their ids and get the new version's title and groups
    assert tasks_of(rt, at_a) == [("A", "Prüfen neu", ["team"])]
    assert [t["id"] for t in list_tasks(rt, case_id=at_b)] == [task_b["id"]]
    for case_id in (at_a, at_b):
        shown = get_case(rt, case_id)
        [moved] = [h for h in shown["history"] if h["action"] == "case_moved"]
        assert moved["actor"] == "admin1"
        assert moved["new"] == {"process_id": "umzug", "from_version": 1, "to_version": 2}
        assert shown["version"] == 2
        with rt.reader.connect() as conn:
            assert verify_chain(conn, case_id)[0]
    # the moved case completes on version 2's path: A -> S (new script) -> B
    complete_all(rt, at_a)
    assert tasks_of(rt, at_a) == [("B", "Bescheid", [])]
    complete_all(rt, at_a)
    done = get_case(rt, at_a)
    assert done["state"] == "completed" and done["data"]["x"] == 42
    # nothing is left on version 1; moving again finds nothing
    assert moves.move(rt, "umzug", 1, 2, "admin1")["cases"] == []


def test_move_refuses_wrong_versions(rt):
    put(rt, "umzug", [user("A", "Prüfen")])
    put(rt, "umzug", [user("A", "Prüfen"), user("B", "Mehr")])
    with pytest.raises(moves.MoveError, match="later version"):
        moves.preview(rt, "umzug", 2, 1)
    with pytest.raises(Exception, match="no version 7"):
        moves.preview(rt, "umzug", 1, 7)


def test_waiting_timer_keeps_its_due_time_and_its_job(rt):
    rt.clock = Clock(T0)
    put(rt, "frist", [timer("Warten", "Frist", "PT48H"), user("A", "Prüfen")])
    case_id = start_case(rt, "frist", "giessen")[0]["id"]
    rt.clock.advance(hours=24)
    put(rt, "frist", [timer("Warten", "Frist", "PT48H"), user("N", "Neuer Schritt"), user("A", "Prüfen")])
    assert moves.move(rt, "frist", 1, 2, "admin1")["moved"] == 1
    with rt.db.connect() as conn:
        jobs = conn.exec_driver_sql("SELECT due_at FROM job WHERE kind = 'timer' AND state = 'pending'").all()
    assert len(jobs) == 1  # the same job: the timer's due time did not start again at the move
    rt.clock.advance(hours=23)
    Worker(rt).run_due()
    assert get_case(rt, case_id)["tasks"] == []  # not due yet (47 h)
    rt.clock.advance(hours=1, minutes=1)
    Worker(rt).run_due()
    assert [t[0] for t in tasks_of(rt, case_id)] == ["N"]  # fired at 48 h, then on version 2's path
    fired = [h for h in get_case(rt, case_id)["history"] if h["action"] == "timer_fired"]
    assert len(fired) == 1 and fired[0]["element_id"] == "Warten"


def test_case_waiting_for_a_message_moves_and_then_gets_it(rt):
    rt.clock = Clock(T0)
    put(rt, "zahlung", [message("Zahlung", "Zahlung eingegangen", "zahlung")], messages=["zahlung"])
    case_id = start_case(rt, "zahlung", "marburg")[0]["id"]
    put(rt, "zahlung", [message("Zahlung", "Zahlung eingegangen", "zahlung"), user("Q", "Quittung")],
        messages=["zahlung"])
    assert moves.move(rt, "zahlung", 1, 2, "admin1")["moved"] == 1
    assert deliver(rt, "zahlung", {"case_id": case_id}, {"betrag": 10})["status"] == "delivered"
    assert [t[0] for t in tasks_of(rt, case_id)] == ["Q"]


def test_failed_case_is_repaired_by_a_fixed_version(rt):
    put(rt, "kaputt", [user("A", "Prüfen"), script("S", "Rechnen", "x = 1 / 0"), user("B", "Ende")])
    case_id = start_case(rt, "kaputt", "giessen")[0]["id"]
    with pytest.raises(Exception, match="division"):
        complete_all(rt, case_id)
    put(rt, "kaputt", [user("A", "Prüfen"), script("S", "Rechnen", "x = 2 / 1"), user("B", "Ende")])
    # the completion was refused and changed nothing: the case still waits at A, and moves
    [item] = moves.preview(rt, "kaputt", 1, 2)["cases"]
    assert item["can_move"], item
    moves.move(rt, "kaputt", 1, 2, "admin1")
    complete_all(rt, case_id)
    assert get_case(rt, case_id)["data"]["x"] == 2.0


def subprocess_model(*tasks):
    """Process "sub": start -> embedded subprocess "Teil" (user tasks ``tasks`` in a row) -> end."""
    ids = ["IS", *[t for t, _ in tasks], "IE"]
    inner = ['<bpmn:startEvent id="IS"><bpmn:outgoing>i0</bpmn:outgoing></bpmn:startEvent>']
    for n, (tid, name) in enumerate(tasks):
        inner.append(f'<bpmn:userTask id="{tid}" name="{name}"><bpmn:incoming>i{n}</bpmn:incoming>'
                     f'<bpmn:outgoing>i{n + 1}</bpmn:outgoing></bpmn:userTask>')
    inner.append(f'<bpmn:endEvent id="IE"><bpmn:incoming>i{len(tasks)}</bpmn:incoming></bpmn:endEvent>')
    inner += [f'<bpmn:sequenceFlow id="i{n}" sourceRef="{ids[n]}" targetRef="{ids[n + 1]}"/>'
              for n in range(len(ids) - 1)]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="http://x">
  <bpmn:process id="sub" isExecutable="true">
    <bpmn:startEvent id="S0"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:subProcess id="Teil" name="Teilprozess"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>
      {"".join(inner)}
    </bpmn:subProcess>
    <bpmn:endEvent id="E0"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="S0" targetRef="Teil"/>
    <bpmn:sequenceFlow id="f1" sourceRef="Teil" targetRef="E0"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


SUB_V1 = subprocess_model(("X", "Innen"))
SUB_V2 = subprocess_model(("X", "Innen"), ("Y", "Danach"))
SUB_V3 = subprocess_model(("Z", "Anders"), ("Q", "Q"))

def test_case_inside_a_subprocess_moves_when_its_task_is_still_there(rt):
    deploy(rt, [Bundle({"s.bpmn": SUB_V1})])
    case_id = start_case(rt, "sub", "giessen")[0]["id"]
    deploy(rt, [Bundle({"s.bpmn": SUB_V2})])  # X stays, Y follows it inside the subprocess
    deploy(rt, [Bundle({"s.bpmn": SUB_V3})])  # X is gone
    [blocked] = moves.preview(rt, "sub", 1, 3)["cases"]
    assert not blocked["can_move"] and blocked["reasons"][0].startswith("in Teil (Teilprozess): has a token on X")
    assert moves.move(rt, "sub", 1, 2, "admin1")["moved"] == 1
    for expected in (["X"], ["Y"]):
        assert [t[0] for t in tasks_of(rt, case_id)] == expected
        complete_all(rt, case_id)
    assert get_case(rt, case_id)["state"] == "completed"


def test_cli_case_move_preview_and_move(cli, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "umzug.bpmn").write_bytes(chain("umzug", [user("A", "Prüfen"), user("B", "Bescheid")]))
    cli("deploy", folder)
    started = cli.json("case", "start", "umzug", "--tenant", "giessen", "--count", "2")
    (folder / "umzug.bpmn").write_bytes(chain("umzug", [user("A", "Prüfen"), user("C", "Anders")]))
    cli("deploy", folder)
    preview = cli.json("case", "move", "--process", "umzug", "--from", "1", "--to", "2", "--preview")
    assert preview["movable"] == 2 and preview["cases"][0]["reasons"] == []
    assert cli.json("case", "show", str(started["ids"][0]))["version"] == 1
    moved = cli.json("case", "move", "--process", "umzug", "--from", "1", "--to", "2", "--user", "admin1")
    assert moved["moved"] == 2
    assert cli.json("case", "show", str(started["ids"][0]))["version"] == 2
    text = cli("case", "move", "--process", "umzug", "--from", "2", "--to", "1", check=False)
    assert text.returncode == 1 and "later version" in text.stderr
    versions = cli.json("process", "versions", "umzug")["versions"]
    assert [(v["version"], v["cases"]["open"], v["starts_new_cases"]) for v in versions] == \
        [(2, 2, True), (1, 0, False)]
    diff = cli.json("process", "diff", "umzug", "1", "2")
    assert [e["id"] for e in diff["added"]] == ["C"] and [e["id"] for e in diff["removed"]] == ["B"]


def test_version_info_names_bindings_and_cases(rt):
    put(rt, "hundesteuer-anmeldung", [user("A", "Prüfen")])
    start_case(rt, "hundesteuer-anmeldung", "marburg")
    info = version_info(rt, "hundesteuer-anmeldung", 1)
    assert info["starts_new_cases"] and info["cases"]["open"] == 1
    assert info["bindings"], "the default tenants file binds the Hundesteuer model"
    assert all({"tenant", "tenant_name", "leika", "name", "shared"} <= set(b) for b in info["bindings"])
    assert [e["id"] for e in info["elements"]] == ["A", "EndEvent_1", "StartEvent_1"]
