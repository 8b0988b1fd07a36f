"""``ozgflow worker --once`` and ``ozgflow incident …`` as an operator runs them (own processes)."""

from datetime import UTC, datetime

from bpmn_snippets import with_step

from engine.jobs import schedule
from engine.lean import Lean

TIMER = with_step("""    <bpmn:intermediateCatchEvent id="Step" name="Frist">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="T"><bpmn:timeDate>"2020-01-01T00:00:00+00:00"</bpmn:timeDate>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>""", pid="abgelaufen")


def test_worker_once_fires_a_due_timer(cli, tmp_path):
    (tmp_path / "t.bpmn").write_bytes(TIMER)
    cli.json("deploy", tmp_path / "t.bpmn")
    case = cli.json("case", "start", "abgelaufen", "--tenant", "marburg")
    assert cli.json("case", "show", case["id"])["state"] == "waiting"
    ran = cli.json("worker", "--once")
    assert ran["done"] >= 1 and ran["incidents"] == 0
    shown = cli.json("case", "show", case["id"])
    assert shown["state"] == "completed"
    assert [h["element_id"] for h in shown["history"] if h["action"] == "timer_fired"] == ["Step"]


def test_failed_job_is_an_incident_not_an_exit_code(rt, cli):
    with Lean.transaction(rt.db) as db:
        now = datetime.now(UTC)
        schedule(db, "no_such_kind", now, now, max_attempts=1)
    ran = cli.json("worker", "--once")
    assert ran["incidents"] == 1  # and the exit code was 0
    [incident] = cli.json("incident", "list")
    assert incident["kind"] == "no_such_kind" and "no handler" in incident["last_error"]
    assert cli.json("incident", "retry", incident["id"])["state"] == "pending"
    refused = cli("incident", "cancel", incident["id"], "--json", check=False)
    assert refused.returncode == 1 and "not an open incident" in refused.stderr
    cli.json("worker", "--once")
    assert cli.json("incident", "cancel", incident["id"], "--user", "admin")["state"] == "cancelled"
    assert cli.json("incident", "list") == []
