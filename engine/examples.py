"""Example cases of a process model (``processes/<id>/tests/*.json``), run as a caseworker would.

An example names the tenant, the initial data, the user tasks to complete in order (element id, user,
form data) and what to expect at the end. Every step goes through the database: the case is stored at
each wait state and restored for the next step, and the stored state must survive a restore/store round
trip unchanged.

    {"tenant": "marburg", "data": {...},
     "steps": [{"task": "Task_AntragPruefen", "user": "anna", "data": {"vollstaendig": true}}, ...],
     "expect": {"state": "completed", "data": {"jahressteuer": 90}}}
"""

import json
import zlib

from sqlalchemy import select

from .cases import complete_task, get_case, list_tasks, start_case
from .schema import Case


class ExampleFailed(AssertionError):
    """An example case did not go as its file says."""


def check_round_trip(rt, case_id):
    """Restore the stored workflow and store it again: the state must come back identical."""
    with rt.reader.connect() as conn:
        row = conn.execute(select(Case.workflow, Case.version_id).where(Case.id == case_id)).one()
        version = rt.version(conn, row.version_id)
    wf = version.serializer.load(row.workflow, version.spec, version.subprocess_specs)
    again = version.serializer.dump(wf)
    if json.loads(zlib.decompress(again)) != json.loads(zlib.decompress(row.workflow)):
        raise ExampleFailed(f"case {case_id}: the state changed in a restore/store round trip")


def run_example(rt, process_id, example, name="example"):
    """Run one example case; returns the final case (as ``get_case``); raises ExampleFailed."""
    [started] = start_case(rt, process_id, example["tenant"], example.get("data", {}), actor="example")
    case_id = started["id"]
    for i, step in enumerate(example.get("steps", []), 1):
        check_round_trip(rt, case_id)
        open_tasks = {t["element_id"]: t for t in list_tasks(rt, case_id=case_id)}
        if step["task"] not in open_tasks:
            raise ExampleFailed(f"{name} step {i}: task {step['task']} is not open (open: {sorted(open_tasks)})")
        complete_task(rt, open_tasks[step["task"]]["id"], step.get("user", "example"), step.get("data", {}))
    check_round_trip(rt, case_id)
    case = get_case(rt, case_id)
    expect = example.get("expect", {})
    if "state" in expect and case["state"] != expect["state"]:
        raise ExampleFailed(f"{name}: state is {case['state']}, expected {expect['state']}")
    for key, value in expect.get("data", {}).items():
        if case["data"].get(key) != value:
            raise ExampleFailed(f"{name}: {key} is {case['data'].get(key)!r}, expected {value!r}")
    if "open_tasks" in expect:
        got = sorted(t["element_id"] for t in case["tasks"])
        if got != sorted(expect["open_tasks"]):
            raise ExampleFailed(f"{name}: open tasks are {got}, expected {sorted(expect['open_tasks'])}")
    return case
