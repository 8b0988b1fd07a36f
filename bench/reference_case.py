"""Scenario ``reference_case``: start -> user task A -> user task B -> end, ours against the limit.

Ours: every case goes through the real engine (``start_case``, ``list_tasks``, ``complete_task``) on a
fresh SQLite database with the engine's defaults (WAL, synchronous=FULL: every commit is durable), so a
case costs three durable transactions, its audit chain and its task rows.

The limit: the same model run by bare SpiffWorkflow in memory, with a full ``serialize_json`` /
``deserialize_json`` round trip (spec included) at each of the two wait states. No engine can persist a
case for less than that, so ``ours / bare`` says how much of the library's speed the engine keeps
(issue 2 asks for at least 0.6).

Both sides run the same cases with the same data, alternate in rounds (so a noisy moment of the machine
hits both) and report their best round.
"""

import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import migrate
from engine.cases import complete_task, list_tasks, start_case
from engine.config import DEFAULT_TENANTS, Settings
from engine.deploy import bundles_from_paths, deploy
from engine.runtime import Runtime
from engine.schema import Case

from .results import RESULTS_FILE, row

SCENARIO = "reference_case"
MODEL = Path(__file__).resolve().parent / "models" / "reference_case.bpmn"
PROCESS_ID = "bench-reference-case"
TENANT = "marburg"
ACTOR = "bench"
STATE_BYTES_GOAL = 2048

# A little data, as a real case has: it lands in the state, the audit log and the serialized JSON.
START_DATA = {"antragsteller": "Erika Mustermann", "ort": "Marburg", "anzahl": 1}
TASK_DATA = {"Task_A": {"geprueft": True}, "Task_B": {"entscheidung": "bewilligt"}}


@dataclass(frozen=True)
class Size:
    cases: int  # per round and side
    rounds: int
    warmup: int  # cases per side before timing: imports, caches, the SQLite page cache


FULL = Size(cases=300, rounds=3, warmup=30)
QUICK = Size(cases=5, rounds=1, warmup=2)


def run(quick=False):
    """Measure both sides; return the result rows."""
    size = QUICK if quick else FULL
    spec, serializer = bare_setup()
    with engine_runtime() as rt:
        timed(lambda: ours_case(rt), size.warmup)
        timed(lambda: bare_case(spec, serializer), size.warmup)
        ours = bare = 0.0
        for _ in range(size.rounds):
            bare = max(bare, size.cases / timed(lambda: bare_case(spec, serializer), size.cases))
            ours = max(ours, size.cases / timed(lambda: ours_case(rt), size.cases))
        state_bytes = waiting_state_bytes(rt)
    return [
        row(SCENARIO, "cases_per_s", ours, "cases/s", "bare_spiffworkflow", ours / bare),
        row(SCENARIO, "bare_spiffworkflow_cases_per_s", bare, "cases/s"),
        row(SCENARIO, "state_bytes_per_waiting_case", state_bytes, "bytes", f"goal_max_{STATE_BYTES_GOAL}",
            state_bytes / STATE_BYTES_GOAL),
        row(SCENARIO, "bare_spiffworkflow_state_bytes", bare_state_bytes(spec, serializer), "bytes"),
    ]


def timed(case, n):
    """Seconds for ``n`` runs of ``case``."""
    started = time.perf_counter()
    for _ in range(n):
        case()
    return time.perf_counter() - started


# --- ours: the real engine on SQLite --------------------------------------------------------------------


@contextmanager
def engine_runtime():
    """A Runtime on a fresh SQLite database with the bench model deployed; removed afterwards.

    The directory is made under var/bench/ rather than the system's temp directory: /tmp is often a
    tmpfs, where fsync costs nothing and "durable" commits would be measured too kindly."""
    parent = RESULTS_FILE.parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=parent) as tmp:
        var = Path(tmp).resolve()
        rt = Runtime(Settings(var_dir=var, database_url=f"sqlite:///{var / 'ozgflow.sqlite'}",
                              tenants_file=DEFAULT_TENANTS, processes_dir=var / "processes"))
        try:
            migrate.upgrade(rt.db)
            deploy(rt, bundles_from_paths([MODEL]), actor=ACTOR)
            yield rt
        finally:
            rt.close()


def ours_case(rt):
    """One case through the engine, as the CLI or the inbox drives it: start, then list and complete."""
    case_id = start_case(rt, PROCESS_ID, TENANT, data=START_DATA, actor=ACTOR)[0]["id"]
    result = None
    for element in ("Task_A", "Task_B"):
        tasks = list_tasks(rt, case_id=case_id)
        _expect([t["element_id"] for t in tasks] == [element], f"case {case_id}: expected {element}, got {tasks}")
        result = complete_task(rt, tasks[0]["id"], ACTOR, TASK_DATA[element])
    _expect(result["state"] == "completed", f"case {case_id} ended in state {result['state']}")


def waiting_state_bytes(rt, samples=10):
    """Mean size of the stored workflow column of fresh cases waiting at their first task."""
    ids = [start_case(rt, PROCESS_ID, TENANT, data=START_DATA, actor=ACTOR)[0]["id"] for _ in range(samples)]
    with rt.reader.connect() as conn:
        rows = conn.execute(select(Case.state, Case.workflow).where(Case.id.in_(ids))).all()
    _expect(len(rows) == samples and all(r.state == "waiting" for r in rows), "sample cases are not waiting")
    return round(sum(len(r.workflow) for r in rows) / samples)


# --- the limit: bare SpiffWorkflow in memory ------------------------------------------------------------


def bare_setup():
    """The parsed spec and a serializer configured like the engine's (spiff dialect)."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(MODEL))
    return parser.get_spec(PROCESS_ID), BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))


def bare_case(spec, serializer):
    """One case in memory, saved and restored in full at each wait state."""
    wf = BpmnWorkflow(spec)
    wf.get_tasks(state=TaskState.READY)[0].data.update(START_DATA)
    wf.do_engine_steps()
    for element in ("Task_A", "Task_B"):
        wf = serializer.deserialize_json(serializer.serialize_json(wf))
        tasks = wf.get_tasks(state=TaskState.READY, manual=True)
        _expect([t.task_spec.bpmn_id for t in tasks] == [element], f"bare case: expected {element}")
        tasks[0].set_data(**TASK_DATA[element])
        tasks[0].run()
        wf.do_engine_steps()
    _expect(wf.is_completed(), "bare case did not complete")


def bare_state_bytes(spec, serializer):
    """Size of bare SpiffWorkflow's full JSON (spec included, uncompressed) of a case at its first task."""
    wf = BpmnWorkflow(spec)
    wf.get_tasks(state=TaskState.READY)[0].data.update(START_DATA)
    wf.do_engine_steps()
    return len(serializer.serialize_json(wf).encode("utf-8"))


def _expect(condition, message):
    # Not assert: a benchmark that silently measures a broken run is worse than one that stops.
    if not condition:
        raise RuntimeError(message)
