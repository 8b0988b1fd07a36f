"""Example cases of a process model (``processes/<id>/tests/*.json``), run as a caseworker would.

An example names the tenant, the initial data, the steps in order and what to expect at the end. Every step
goes through the database: the case is stored at each wait state and restored for the next step, and the
stored state must survive a restore/store round trip unchanged.

    {"tenant": "marburg", "now": "2025-06-02T08:00:00Z",
     "metadata": {"replyChannel": {"eMail": {"address": "a@example.org"}}, "paymentInformation": {...}},
     "data": {...},
     "steps": [{"task": "Task_AntragPruefen", "user": "anna", "data": {"vollstaendig": true}},
               {"jobs": true},
               {"message": "zahlung_eingegangen", "data": {"betrag": 26.0}},
               {"advance": "P14D"}, ...],
     "expect": {"state": "completed", "data": {"jahressteuer": 90}, "open_tasks": [...],
                "data_contains": {"stadt": {"id": "marburg"}}, "treasury": [{"amount_cents": 9000}]}}

Steps (contract C):

* ``{"task": element_id, "user": u, "data": {...}}`` completes the open user task as the inbox would, with the
  Vier-Augen rule (``four_eyes_of``) applied (``"expect_error": "…"``: the completion must be refused with a
  message containing that text, and the case stays as it was);
* ``{"message": name, "data": {...}}`` correlates a message to the case (``"correlation"`` overrides the
  default ``{"case_id": <the case>}``; ``"status"`` the expected outcome, default ``delivered``);
* ``{"advance": "P14D"}`` moves the injected clock (an ISO-8601 duration) and runs what fell due;
* ``{"jobs": true}`` runs the background jobs that are due now (service calls, timers, kept messages).

``metadata`` is what a FIT-Connect submission would carry: its ``replyChannel`` and ``paymentInformation`` go
into the case data the way the mailbox pickup puts them (``antrag.reply_channel``, ``antrag.payment``).
The clock starts at ``now`` (default ``DEFAULT_NOW``), so due dates and deadlines are the same on every run.
"""

import json
import zlib
from datetime import UTC, datetime

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from sqlalchemy import select

from .cases import complete_task, get_case, list_tasks, start_case
from .errors import OzgflowError
from .schema import Case

DEFAULT_NOW = "2025-06-02T08:00:00Z"


class ExampleFailed(AssertionError):
    """An example case did not go as its file says."""


class Clock:
    """The injected clock of an example run: ``rt.clock`` while it runs."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def check_round_trip(rt, case_id):
    """Restore the stored workflow and store it again: the state must come back identical."""
    with rt.reader.connect() as conn:
        row = conn.execute(select(Case.workflow, Case.version_id).where(Case.id == case_id)).one()
        version = rt.version(conn, row.version_id)
    wf = version.serializer.load(row.workflow, version.spec, version.subprocess_specs)
    again = version.serializer.dump(wf)
    if json.loads(zlib.decompress(again)) != json.loads(zlib.decompress(row.workflow)):
        raise ExampleFailed(f"case {case_id}: the state changed in a restore/store round trip")


def _parse_now(text):
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def initial_data(example):
    """The example's data with its metadata placed where the mailbox pickup puts it (``antrag``)."""
    data = json.loads(json.dumps(example.get("data", {})))
    metadata = example.get("metadata") or {}
    if metadata:
        antrag = dict(data.get("antrag") or {})
        antrag.setdefault("reply_channel", metadata.get("replyChannel"))
        antrag.setdefault("payment", metadata.get("paymentInformation"))
        data["antrag"] = antrag
    return data


def run_jobs(rt):
    """Run the background jobs that are due now (burst mode of the worker)."""
    from .jobs import Worker

    return Worker(rt, name="example").run_due()


def _advance(rt, clock, text, where):
    try:
        duration = TimerEventDefinition.parse_iso_duration(text)
        clock.now = clock.now + TimerEventDefinition.get_timedelta_from_start(duration, clock.now)
    except Exception as exc:  # the library raises plain exceptions for bad durations
        raise ExampleFailed(f"{where}: 'advance' needs an ISO-8601 duration like P14D, got {text!r} ({exc})") \
            from None
    run_jobs(rt)


def _task_step(rt, case_id, step, where):
    open_tasks = {t["element_id"]: t for t in list_tasks(rt, case_id=case_id)}
    if step["task"] not in open_tasks:
        raise ExampleFailed(f"{where}: task {step['task']} is not open (open: {sorted(open_tasks)})")
    try:
        _four_eyes(rt, case_id, step["task"], step.get("user", "example"))
        complete_task(rt, open_tasks[step["task"]]["id"], step.get("user", "example"), step.get("data", {}))
    except OzgflowError as exc:
        if step.get("expect_error") and step["expect_error"] in str(exc):
            return
        raise ExampleFailed(f"{where}: completing {step['task']} failed: {exc}") from exc
    if step.get("expect_error"):
        raise ExampleFailed(f"{where}: completing {step['task']} should have been refused "
                            f"({step['expect_error']!r})")


def _four_eyes(rt, case_id, element_id, user):
    """The Vier-Augen rule as the inbox applies it (``four_eyes_of``): whoever completed the named earlier
    task of the case may not complete this one."""
    from .schema import Task

    with rt.reader.connect() as conn:
        version_id = conn.execute(select(Case.version_id).where(Case.id == case_id)).scalar_one()
        earlier = rt.version(conn, version_id).meta["tasks"].get(element_id, {}).get("four_eyes_of")
        if earlier and conn.execute(select(Task.id).where(
                Task.case_id == case_id, Task.element_id == earlier, Task.state == "completed",
                Task.completed_by == user).limit(1)).first() is not None:
            raise OzgflowError(f"Vier-Augen-Prinzip: {user} completed {earlier} in this case and may not complete "
                               f"{element_id}")


def _message_step(rt, case_id, step, where):
    from .messages import deliver

    correlation = step.get("correlation") or {"case_id": case_id}
    result = deliver(rt, step["message"], correlation, step.get("data") or {}, actor=step.get("user", "example"))
    if result["status"] != step.get("status", "delivered"):
        raise ExampleFailed(f"{where}: message {step['message']} was {result['status']}, expected "
                            f"{step.get('status', 'delivered')} ({result.get('reason') or ''})")


def run_example(rt, process_id, example, name="example"):
    """Run one example case; returns the final case (as ``get_case``); raises ExampleFailed."""
    clock, saved = Clock(_parse_now(example.get("now") or DEFAULT_NOW)), rt.clock
    rt.clock = clock
    try:
        return _run(rt, process_id, example, name, clock)
    finally:
        rt.clock = saved


def _run(rt, process_id, example, name, clock):
    [started] = start_case(rt, process_id, example["tenant"], initial_data(example), actor="example")
    case_id = started["id"]
    if started["state"] == "error":
        raise ExampleFailed(f"{name}: the case failed at its start: {started['error']}")
    for i, step in enumerate(example.get("steps", []), 1):
        where = f"{name} step {i}"
        check_round_trip(rt, case_id)
        if "task" in step:
            _task_step(rt, case_id, step, where)
        elif "message" in step:
            _message_step(rt, case_id, step, where)
        elif "advance" in step:
            _advance(rt, clock, step["advance"], where)
        elif step.get("jobs"):
            run_jobs(rt)
        else:
            raise ExampleFailed(f"{where}: a step is a task, message, advance or jobs step, got {sorted(step)}")
        state = get_case(rt, case_id)["state"]
        if state == "error":
            errors = [h["new"] for h in get_case(rt, case_id)["history"] if h["action"] == "error"]
            raise ExampleFailed(f"{where}: the case failed: {errors[-1] if errors else '(no message)'}")
    check_round_trip(rt, case_id)
    case = get_case(rt, case_id)
    check_expectations(rt, case, example.get("expect", {}), name)
    return case


def _contains(got, wanted):
    if isinstance(wanted, dict):
        return isinstance(got, dict) and all(k in got and _contains(got[k], v) for k, v in wanted.items())
    return got == wanted


def check_expectations(rt, case, expect, name):
    if "state" in expect and case["state"] != expect["state"]:
        raise ExampleFailed(f"{name}: state is {case['state']}, expected {expect['state']}")
    for key, value in expect.get("data", {}).items():
        if case["data"].get(key) != value:
            raise ExampleFailed(f"{name}: {key} is {case['data'].get(key)!r}, expected {value!r}")
    for key, value in expect.get("data_contains", {}).items():
        if not _contains(case["data"].get(key), value):
            raise ExampleFailed(f"{name}: {key} is {case['data'].get(key)!r}, expected it to contain {value!r}")
    if "open_tasks" in expect:
        got = sorted(t["element_id"] for t in case["tasks"])
        if got != sorted(expect["open_tasks"]):
            raise ExampleFailed(f"{name}: open tasks are {got}, expected {sorted(expect['open_tasks'])}")
    if "treasury" in expect:
        records = treasury_records(rt, case)
        if len(records) != len(expect["treasury"]) or not all(
                _contains(r, w) for r, w in zip(records, expect["treasury"], strict=True)):
            raise ExampleFailed(f"{name}: treasury records are {records}, expected {expect['treasury']}")


def treasury_records(rt, case):
    """The records the case handed to its tenant's treasury (file target), oldest Kassenzeichen first."""
    from connectors.treasury import kasse_settings

    directory = kasse_settings(rt, case["tenant"])["dir"]
    found = []
    for path in sorted(directory.glob("*.json")) if directory.exists() else []:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("case_id") == case["id"]:
            found.append(record)
    return found
