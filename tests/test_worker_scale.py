"""Scale-out on PostgreSQL: three worker processes share 5,000 jobs (service calls and timers); one is killed
with SIGKILL mid-run; the others take its jobs over when their lease ends. Every job runs exactly once:
each case records exactly one ``service_called`` and one ``timer_fired``, and none is lost."""

import signal
import subprocess
import sys
import time

import pytest
from bpmn_snippets import HEAD

from engine.cases import start_case
from engine.deploy import deploy
from engine.models import Bundle

CASES = 2500  # each makes two jobs: a service call, then a timer
LEASE = 3

PROCESS = (HEAD.format(pid="scale") + """    <bpmn:serviceTask id="Call" name="Melden">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="echo" resultVariable="antwort">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="n" type="int" value="n" />
          </spiffworkflow:parameters>
          <spiffworkflow:retry retries="3" backoff_base="1" />
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:intermediateCatchEvent id="Wait" name="Frist">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="T"><bpmn:timeDuration>"PT0S"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Call" />
    <bpmn:sequenceFlow id="F2" sourceRef="Call" targetRef="Wait" />
    <bpmn:sequenceFlow id="F3" sourceRef="Wait" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
""").encode()


def _counts(rt):
    with rt.db.connect() as conn:
        per_case = conn.exec_driver_sql(
            "SELECT c.id, c.state, "
            "SUM(CASE WHEN a.action = 'service_called' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN a.action = 'timer_fired' THEN 1 ELSE 0 END) "
            "FROM \"case\" c JOIN audit_event a ON a.case_id = c.id GROUP BY c.id, c.state").all()
        # periodic jobs (mailbox pickup, message expiry, retention …) always keep their one row, and a completed
        # case's e-file export waits a minute after completion (engine.efile): not leftovers
        jobs = conn.exec_driver_sql("SELECT kind, state, COUNT(*) FROM job WHERE every_seconds IS NULL "
                                    "AND NOT (kind = 'efile_export' AND state = 'pending') "
                                    "GROUP BY kind, state").all()
    return per_case, jobs


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_workers_one_killed_every_job_exactly_once(rt, cli, tmp_path):
    deploy(rt, [Bundle({"scale.bpmn": PROCESS})])
    for start in range(0, CASES, 500):
        start_case(rt, "scale", "marburg", {"n": start}, count=500)
    logs = [open(tmp_path / f"worker-{i}.log", "w") for i in range(3)]  # noqa: SIM115 (closed below)
    workers = [subprocess.Popen([sys.executable, "-m", "ozgflow", "worker", "--interval", "0.05", "--lease",
                                 str(LEASE), "--batch", "5"], cwd=cli.cwd, env=cli.env, stdout=log, stderr=log)
               for log in logs]
    try:
        time.sleep(2.0)  # all three are busy now
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            per_case, jobs = _counts(rt)
            if all(state == "completed" for _, state, _, _ in per_case) and \
                    not jobs:
                break
            time.sleep(0.5)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
        for log in logs:
            log.close()
    per_case, jobs = _counts(rt)
    assert len(per_case) == CASES
    not_done = [(cid, state) for cid, state, _, _ in per_case if state != "completed"]
    assert not_done == [], f"{len(not_done)} cases unfinished; " + (tmp_path / "worker-1.log").read_text()[-3000:]
    twice = [(cid, calls, fired) for cid, _, calls, fired in per_case if (calls, fired) != (1, 1)]
    assert twice == [], f"jobs not run exactly once: {twice[:5]}"
    assert jobs == []  # none lost, no incidents
    assert victim.returncode == -signal.SIGKILL
    print(f"\n{sys.argv[0]}: {CASES * 2} jobs done by the two survivors after the kill", file=sys.stderr)
