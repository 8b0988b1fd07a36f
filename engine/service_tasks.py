"""Service tasks in the background: the call happens in a job, outside any transaction, with retries.

A spiff service task that declares retries (``<spiffworkflow:retry retries="3" backoff_base="30"/>`` in its
``serviceTaskOperator``) does not call out inside the step that reaches it (``engine.specs.ServiceTask``): the
case is stored waiting at the task, and a step hook (``schedule_calls``) adds a ``service_call`` job with the
operation and its parameters, evaluated in that step. A worker makes the call with a timeout; on success one
step of the case stores the result in the task's result variable, records ``service_called`` and moves on.

A failure is retried ``retries`` times, the first after ``backoff_base`` seconds (default 10), each wait twice
the one before; after the last try the job is an incident (``engine.jobs``) and the case keeps waiting at the
task — nothing is lost. An operator retries (a fresh set of tries) or cancels it.

The outside call itself is at-least-once: a worker that dies after the call but before its step commits leaves
the job to another worker, which calls again. The case records the result exactly once. Connectors receive
``idempotency_key`` when they accept it, to let the outside system recognise a repeated call.

The timeout of a call is the task's extension property ``timeout`` (seconds), else 10 s; keep it well below
the workers' lease.
"""

import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as CallTimeout
from uuid import UUID

from SpiffWorkflow.util.task import TaskState

from connectors.services import CaseContext, wants_case

from . import jobs
from .cases import SYSTEM, step_case
from .specs import ServiceTask

KIND = "service_call"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_BACKOFF_SECONDS = 10.0
STARTED = TaskState.STARTED


class ServiceFailed(Exception):
    """The connector failed, timed out or returned something that is not JSON."""


def _has_background_services(version):
    found = getattr(version, "background_services", None)
    if found is None:
        found = any(isinstance(ts, ServiceTask) and ts.in_background
                    for spec in (version.spec, *version.subprocess_specs.values())
                    for ts in spec.task_specs.values())
        version.background_services = found  # cached on the loaded version: specs do not change
    return found


def waiting_calls(wf):
    """Service tasks of the case that wait for their background call."""
    return [t for workflow in (wf, *wf.subprocesses.values()) for t in workflow.tasks.values()
            if t.state == STARTED and isinstance(t.task_spec, ServiceTask) and t.task_spec.in_background]


def schedule_calls(db, ctx):
    """Step hook: a ``service_call`` job for each service task that waits for its call."""
    if not _has_background_services(ctx.version):
        return
    for t in waiting_calls(ctx.workflow):
        spec = t.task_spec
        props = (getattr(spec, "extensions", None) or {}).get("properties", {})
        payload = {"task": str(t.id), "element_id": spec.bpmn_id, "operation": spec.operation_name,
                   "params": t._get_internal_data("service_params") or {},
                   "timeout": float(props.get("timeout") or DEFAULT_TIMEOUT_SECONDS)}
        jobs.schedule(db, KIND, ctx.now, ctx.now, case_id=ctx.case_id, tenant=ctx.tenant, payload=payload,
                      key=f"service:{ctx.case_id}:{t.id}", max_attempts=int(spec.retries) + 1,
                      backoff_seconds=float(spec.retry_backoff_base or DEFAULT_BACKOFF_SECONDS))


def call_service(rt, operation, params, timeout, idempotency_key, case_id=None, tenant=None):
    """Call the connector registered as ``operation`` with a timeout; returns its result as JSON text.

    A connector that declares ``wants_case`` gets ``case`` (``connectors.services.CaseContext`` of
    ``case_id``/``tenant``) besides the model's parameters; a parameter of that name from the model is dropped."""
    service = rt.services.get(operation)
    if service is None:
        raise ServiceFailed(f"no connector registered for service '{operation}'")
    kwargs = dict(params)
    if wants_case(service):
        if case_id is None:
            raise ServiceFailed(f"service '{operation}' needs its case, and this call has none")
        kwargs["case"] = CaseContext(rt, case_id, tenant)
    if _accepts(service, "idempotency_key"):
        kwargs["idempotency_key"] = idempotency_key
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"service-{operation}")
    try:
        result = pool.submit(service, **kwargs).result(timeout=timeout)
    except CallTimeout:
        raise ServiceFailed(f"service '{operation}' did not answer within {timeout:g} s") from None
    except Exception as exc:  # any connector failure: the job retries it
        raise ServiceFailed(f"service '{operation}' failed: {exc.__class__.__name__}: {exc}") from exc
    finally:
        pool.shutdown(wait=False)  # a call that timed out may linger; it is not waited for
    try:
        return result if isinstance(result, str) and _is_json(result) else json.dumps(result)
    except TypeError as exc:
        raise ServiceFailed(f"service '{operation}' returned a value that is not JSON: {exc}") from None


def _accepts(fn, name):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _is_json(text):
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class _Stale(Exception):
    pass


def _find(wf, task_id):
    for workflow in (wf, *wf.subprocesses.values()):
        task = workflow.tasks.get(task_id)
        if task is not None:
            return task
    return None


def run_call(rt, job):
    """Job handler: call the service (outside any transaction), then complete the task in one step."""
    p = job.payload
    result = call_service(rt, p["operation"], p["params"], p.get("timeout", DEFAULT_TIMEOUT_SECONDS),
                          f"ozgflow-case-{job.case_id}-task-{p['task']}", case_id=job.case_id, tenant=job.tenant)
    task_id = UUID(p["task"])

    def act(wf, trail, now):
        task = _find(wf, task_id)
        if task is None or task.state != STARTED:
            raise _Stale()
        task.data[task.task_spec.result_variable] = json.loads(result)
        trail.add(SYSTEM, "service_called", task.task_spec.bpmn_id,
                  new={"operation": p["operation"], "attempt": job.attempts})
        task.complete()
        return "called"

    try:
        step_case(rt, job.case_id, act)
    except _Stale:
        pass


jobs.register(KIND, run_call)
