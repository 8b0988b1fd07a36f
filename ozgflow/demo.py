"""The demo of ``ozgflow up``: users in every city and cases at different stages, made once.

What is seeded comes from a plan (``ozgflow/demo_plan.json``, or ``OZGFLOW_DEMO_PLAN``): a list of cases, each

    {"tenant": "fulda", "process": "hundesteuer-anmeldung", "example": "nachforderung-fulda", "steps": 2,
     "stage": "wartet auf Unterlagen", "efile": false}

or, for a sample application of the mailbox demo data, ``{"tenant": …, "application": "application_01_….json"}``.
``example`` names an example case of the model (``processes/<id>/tests/<example>.json``): its data start the
case, and its first ``steps`` steps (a number, or ``"all"``) are then done — the same data the model's own
tests use, so a plan entry stays valid as the model changes. ``efile: true`` exports the closed case to the
E-Akte at once (``engine.efile.export_case``, as ``ozgflow efile export`` does).

Every case goes through the engine's own paths: where the tenant's FIT-Connect destination takes the service
the model is bound to, the application is encrypted and sent to the local mailbox and picked up
(``engine.intake``); otherwise the case is started with ``start_case``. Steps are ``complete_task`` (as
``sb.<city>``, a second person of the example as ``tl.<city>``) and message deliveries. An entry whose model
is not deployed, or whose example does not exist, is skipped with a note. The plan is worked once: the marker
``<var>/.demo-seeded`` holds what was made (JSON) and stops a second run.
"""

import json
import logging
import os
import time
from pathlib import Path

from sqlalchemy import insert, select

log = logging.getLogger(__name__)

PLAN = Path(__file__).with_name("demo_plan.json")
PASSWORD = "ozgflow-demo"
ACTORS = ("sb.{tenant}", "tl.{tenant}")  # the example's first and second person
WAIT_SECONDS = 15


class DemoError(Exception):
    """A plan entry that cannot be worked as written (its task never opened, the pickup failed …)."""


# --- users ----------------------------------------------------------------------------------------------------


def demo_groups(rt):
    """Every candidate group of the deployed models' user tasks (lanes, candidateGroups), sorted."""
    from engine.schema import ProcessVersion

    groups = set()
    with rt.reader.connect() as conn:
        for (meta,) in conn.execute(select(ProcessVersion.meta).where(ProcessVersion.executable.is_(True))):
            for task in (json.loads(meta).get("tasks") or {}).values():
                groups.update(g for g in task.get("groups") or () if isinstance(g, str) and g)
    return sorted(groups | {"poststelle"})  # Postversand tasks of letters go there unless a lane says otherwise


def demo_users(rt):
    """A caseworker (sb.<city>) and a team lead (tl.<city>) in every city, in every group of the models, plus
    a designer and an admin (of the first city). Made once; a later start adds groups of new models. Returns
    [(name, role, tenant, created now)]."""
    from engine.users import UserError, add_user

    groups = demo_groups(rt)
    first = next(iter(rt.tenants.tenants))
    wanted = [(f"sb.{t}", "caseworker", t, groups) for t in rt.tenants.tenants]
    wanted += [(f"tl.{t}", "teamlead", t, groups) for t in rt.tenants.tenants]
    wanted += [("designer", "designer", first, []), ("admin", "admin", first, [])]
    made = []
    for name, role, tenant, member_of in sorted(wanted, key=lambda w: (list(rt.tenants.tenants).index(w[2]), w[0])):
        try:
            add_user(rt, name, tenant, role, PASSWORD, member_of)
            made.append((name, role, tenant, True))
        except UserError:  # exists already (an earlier start, or an operator's own account)
            _join(rt, name, tenant, member_of)
            made.append((name, role, tenant, False))
    return made


def _join(rt, name, tenant, groups):
    """Add the demo user ``name`` (of ``tenant``) to the groups it is not in yet."""
    from engine.schema import Membership, User
    from engine.users import _ensure_groups

    with rt.db.begin() as conn:
        user = conn.execute(select(User.id, User.tenant).where(User.name == name)).first()
        if user is None or user.tenant != tenant:
            return
        have = {g for (g,) in conn.execute(select(Membership.group_id).where(Membership.user_id == user.id))}
        for gid in _ensure_groups(conn, tenant, groups):
            if gid not in have:
                conn.execute(insert(Membership).values(user_id=user.id, group_id=gid))


def credentials(rt, users):
    """The lines that tell a person how to log in (printed at every start, to stderr)."""
    lines = [f"demo users, password {PASSWORD!r} for all:"]
    by_tenant = {}
    for name, role, tenant, _new in users:
        by_tenant.setdefault(tenant, []).append(f"{name} ({role})")
    for tenant, names in by_tenant.items():
        lines.append(f"  {rt.tenants.get(tenant).name}: {', '.join(names)}")
    made = sum(1 for u in users if u[3])
    if made:
        lines.append(f"  ({made} created now)")
    return lines


# --- cases ----------------------------------------------------------------------------------------------------


def load_plan(path=None):
    path = Path(path or os.environ.get("OZGFLOW_DEMO_PLAN") or PLAN)
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoError(f"{path}: {exc}") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("cases"), list):
        raise DemoError(f"{path}: a demo plan is an object with a list 'cases'")
    return plan


def seed(rt, mailbox_url=None, plan=None, note=None):
    """Work the plan once; returns the report written to ``<var>/.demo-seeded`` ({"cases": [...],
    "skipped": [...]}, in plan order), or None when seeded before. ``note(text)`` hears what is skipped.

    In three rounds, so that the slow parts overlap: every application is encrypted and sent first; then each
    city's destination is picked up (``engine.intake.pickup``) in child processes, one per CPU — loading a
    destination's 4096-bit keys keeps a CPU busy for a while — while this process starts and works the cases
    that do not come by mail; last, the mailbox cases' steps, in plan order. One city's cases are picked up one
    by one, in the order they were sent: the Aktenzeichen are the same on every run."""
    note = note or log.info
    marker = rt.settings.var_dir / ".demo-seeded"
    if marker.exists():
        return None
    plan = plan or load_plan()
    deployed = _deployed(rt)
    done, skipped = {}, []

    def attempt(index, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # one broken entry does not stop the demo; it is reported
            log.exception("demo plan entry %s failed", index)
            note(f"demo plan entry {index} failed: {exc}")
            skipped.append({"entry": index, "reason": f"failed: {exc}"})
            return None

    prepared = []
    for index, entry in enumerate(plan["cases"]):
        why = _skip_reason(rt, entry, deployed)
        if why:
            note(f"demo plan entry {index} skipped: {why}")
            skipped.append({"entry": index, "reason": why})
        else:
            prepared.append((index, entry, attempt(index, _prepare, rt, entry, mailbox_url is not None)))
    sent = list(_send_all(prepared, mailbox_url, attempt).items())
    share = max(1, min(len(sent), os.cpu_count() or 1))  # a process per CPU, each with some of the cities
    pickups = [_pickup_process(rt, mailbox_url, sent[i::share]) for i in range(share) if sent[i::share]]
    try:
        for index, _entry, job in prepared:
            if job and job["outgoing"] is None:
                done[index] = attempt(index, _finish, rt, job, None)
    finally:
        _wait_all(pickups)
    for index, _entry, job in prepared:
        if job and job["outgoing"] is not None and job.get("submission"):
            done[index] = attempt(index, _finish, rt, job, mailbox_url)
    report = {"cases": [{"entry": i, **done[i]} for i in sorted(done) if done[i]],
              "skipped": sorted(skipped, key=lambda s: s["entry"])}
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def _send_all(prepared, url, attempt):
    """Send every application of the plan (in plan order); returns {tenant id: [submission ids in order]}."""
    mailed = [(index, job) for index, _entry, job in prepared if job and job["outgoing"] is not None]
    by_tenant = {}
    if mailed:
        with _sender(url) as sender:
            for index, job in mailed:
                job["submission"] = attempt(index, _send, job["tenant"], sender, job["outgoing"])
                if job["submission"]:
                    by_tenant.setdefault(job["tenant"].id, []).append(job["submission"])
    return by_tenant


def _wait_all(processes):
    for proc in processes:
        try:
            proc.wait(timeout=120)
        except Exception:  # noqa: BLE001 - a hanging pickup must not hang the demo; the worker picks up later
            proc.kill()


def _pickup_process(rt, url, cities):
    """A child process that picks up the submissions of some cities ([(tenant id, [submission ids])]), one by
    one in the order they were sent (the mailbox lists them by the second they arrived), on this runtime's
    database and files."""
    import subprocess
    import sys

    env = {**os.environ, "OZGFLOW_DATABASE_URL": rt.settings.database_url, "OZGFLOW_VAR": str(rt.settings.var_dir),
           "OZGFLOW_TENANTS": str(rt.settings.tenants_file), "OZGFLOW_FITCONNECT_URL": url}
    code = "import sys; from ozgflow.demo import pickup_in_order; pickup_in_order(sys.argv[1:])"
    args = [f"{tenant}:{','.join(ids)}" for tenant, ids in cities]
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            stdout=subprocess.DEVNULL)  # its log lines go where ours go


class _InOrder:
    """A mailbox source whose pending submissions come in a given order (the rest after them)."""

    def __init__(self, source, order):
        self._source, self._rank = source, {sid: i for i, sid in enumerate(order)}

    def __getattr__(self, name):
        return getattr(self._source, name)

    def pending(self):
        return sorted(self._source.pending(), key=lambda item: self._rank.get(item["submissionId"], len(self._rank)))


def pickup_in_order(cities):
    """The pickup child's work: for each "tenant:id,id,…", engine.intake.pickup one at a time in that order."""
    from engine.intake import pickup, sources
    from engine.runtime import Runtime

    rt = Runtime()
    try:
        for spec in cities:
            tenant_id, _, ids = spec.partition(":")
            for tid, source in sources(rt, tenant_id):
                pickup(rt, tid, _InOrder(source, ids.split(",")), parallel=1)
    finally:
        rt.close()


def _deployed(rt):
    from engine.schema import ProcessVersion

    with rt.reader.connect() as conn:
        return {p for (p,) in conn.execute(select(ProcessVersion.process_id)
                                           .where(ProcessVersion.executable.is_(True)))}


def _tenant_of(rt, entry):
    """The plan entry's city; without one, the example's own city (its data fit that city's settings)."""
    if entry.get("tenant") or "application" in entry or not entry.get("example"):
        return entry.get("tenant")
    return (_example(rt, entry.get("process"), entry["example"]) or {}).get("tenant")


def _skip_reason(rt, entry, deployed):
    tenant = _tenant_of(rt, entry)
    if tenant not in rt.tenants.tenants:
        return f"tenant {tenant!r} is not configured"
    if "application" in entry:
        return None if _application_path(entry["application"]).is_file() else \
            f"no sample application {entry['application']!r}"
    process = entry.get("process")
    if process not in deployed:
        return f"model {process!r} is not deployed"
    if entry.get("example") and _example(rt, process, entry["example"]) is None:
        return f"model {process!r} has no example {entry['example']!r}"
    return None


def _application_path(name):
    from connectors.fitconnect.keys import DEMO_DIR

    path = (DEMO_DIR / name).resolve()
    return path if path.parent == DEMO_DIR.resolve() else DEMO_DIR / "(outside the demo folder)"


def _example(rt, process, name):
    path = rt.settings.processes_dir / process / "tests" / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _sender(url):
    from connectors.fitconnect.client import Sender

    return Sender(url, os.environ.get("OZGFLOW_FITCONNECT_SENDER_ID", "demo-sender"),
                  os.environ.get("OZGFLOW_FITCONNECT_SENDER_SECRET", "demo-sender-secret"))


def _prepare(rt, entry, mailbox):
    """What one plan entry needs: its city, model, example, data and — when it comes by mail — the application."""
    tenant = rt.tenants.get(_tenant_of(rt, entry))
    if "application" in entry:
        if not mailbox:
            raise DemoError("a sample application needs the local mailbox")
        return {"entry": entry, "tenant": tenant, "process": None, "example": {"steps": []},
                "outgoing": _load(entry["application"])}
    process = entry["process"]
    example = _example(rt, process, entry["example"]) if entry.get("example") else \
        {"data": entry.get("data", {}), "steps": []}
    data = _for_city(example.get("data") or {}, tenant)
    outgoing = _outgoing_for(rt, tenant, process, data, example.get("metadata")) if mailbox else None
    return {"entry": entry, "tenant": tenant, "process": process, "example": example, "data": data,
            "outgoing": outgoing}


def _finish(rt, job, url):
    """The case of a prepared entry (picked up from the mailbox, or started now) and its steps."""
    from engine.cases import start_case

    entry, tenant, example = job["entry"], job["tenant"], job["example"]
    if job["outgoing"] is not None:
        case_id, via = _picked_up(rt, tenant, url, job["submission"]), "mailbox"
    else:  # the metadata go where the pickup would put them (engine.examples.initial_data)
        from engine.examples import initial_data

        [started] = start_case(rt, job["process"], tenant.id, initial_data({**example, "data": job["data"]}),
                               actor="demo")
        case_id, via = started["id"], "engine"
    steps = example.get("steps") or []
    wanted = len(steps) if entry.get("steps", 0) == "all" else int(entry.get("steps", 0))
    completed = _work(rt, case_id, tenant.id, steps[:wanted])
    exported = False
    if entry.get("efile"):
        from engine.efile import export_case

        _wait(rt, lambda: _state(rt, case_id) == "completed" or None, f"case {case_id} to complete")
        export_case(rt, case_id)
        exported = True
    return {"case_id": case_id, "tenant": tenant.id, "process_id": job["process"], "via": via,
            "tasks_completed": completed, "stage": entry.get("stage", ""), "efile": exported}


def _for_city(data, tenant):
    """The example's data as if the application had been made in ``tenant``: its ``gemeinde`` (name, AGS)."""
    data = json.loads(json.dumps(data))
    if isinstance(data.get("gemeinde"), dict):
        data["gemeinde"].update({k: v for k, v in (("name", tenant.name), ("ags", tenant.ags))
                                 if k in data["gemeinde"]})
    return data


def _load(name):
    from connectors.fitconnect.application import load_application

    return load_application(_application_path(name))


def _outgoing_for(rt, tenant, process, data, example_metadata):
    """The application to send for ``process`` in ``tenant``, or None when no destination of the tenant takes a
    service bound to it (then the case is started directly). Metadata and attachments come from the sample
    application of the same service (else the first sample, its service swapped), the data from the example."""
    from connectors.fitconnect.application import DEMO_APPLICATIONS, Outgoing, load_application
    from connectors.fitconnect.crypto import sha512_hex

    binding = rt.tenants.binding_for_process(tenant.id, process)
    if binding is None or not any(binding.leika in d.services for d in tenant.destinations):
        return None
    samples = [load_application(p) for p in DEMO_APPLICATIONS]
    if not samples:
        return None
    base = next((s for s in samples if s.leika == binding.leika), samples[0])
    data_bytes = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    metadata = json.loads(base.metadata)
    metadata["contentStructure"]["data"]["hash"]["content"] = sha512_hex(data_bytes)
    if isinstance(data.get("$schema"), str):
        metadata["contentStructure"]["data"].setdefault("submissionSchema", {})["schemaUri"] = data["$schema"]
    service = {"name": binding.name or process, "identifier": f"urn:de:fim:leika:leistung:{binding.leika}"}
    metadata["publicServiceType"] = service
    for key in ("replyChannel", "paymentInformation"):  # what the example's citizen chose, not the sample's
        metadata.pop(key, None)
        if isinstance((example_metadata or {}).get(key), dict):
            metadata[key] = example_metadata[key]
    return Outgoing(service=service, leika=binding.leika, metadata=json.dumps(metadata, ensure_ascii=False).encode(),
                    data=data_bytes, attachments=base.attachments)


def _send(tenant, sender, outgoing):
    """Encrypt and send the application to the tenant's destination for its service; returns the submission id."""
    destination = next((d for d in tenant.destinations if outgoing.leika in d.services), None)
    if destination is None:
        raise DemoError(f"no destination of {tenant.id} takes the service {outgoing.leika}")
    return sender.send(destination.id, service=outgoing.service, metadata=outgoing.metadata, data=outgoing.data,
                       attachments=outgoing.attachments)["submissionId"]


def _picked_up(rt, tenant, url, submission_id):
    """The case the submission became; picks up here if the pickup process (or a worker) has not."""
    from engine.intake import poll_all

    def case():
        found = _case_of_submission(rt, submission_id)
        if found is None:
            poll_all(rt, tenant.id, base_url=url, parallel=1)  # a submission is stored exactly once
            found = _case_of_submission(rt, submission_id)
        return found

    return _wait(rt, case, f"submission {submission_id} to be picked up")


def _case_of_submission(rt, submission_id):
    from engine.schema import Submission

    with rt.reader.connect() as conn:
        row = conn.execute(select(Submission.state, Submission.case_id, Submission.reason)
                           .where(Submission.submission_id == submission_id)).first()
    if row is not None and row.state == "rejected":
        raise DemoError(f"the mailbox pickup rejected the demo submission: {row.reason}")
    return row.case_id if row is not None else None


def _state(rt, case_id):
    from engine.schema import Case

    with rt.reader.connect() as conn:
        return conn.execute(select(Case.state).where(Case.id == case_id)).scalar_one()


def _wait(rt, found, what):
    """Call ``found()`` until it returns something, running due background jobs between tries (service calls,
    messages: what a worker would do), for at most WAIT_SECONDS."""
    from engine.jobs import Worker

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = found()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"waited {WAIT_SECONDS} s for {what}")
        Worker(rt, name="demo-seed").run_due()
        time.sleep(0.05)


def _work(rt, case_id, tenant, steps):
    """Do the example's steps on the case; returns how many tasks were completed. Steps the example expects to
    be refused (``expect_error``, e.g. Vier-Augen) are left out."""
    from engine.cases import complete_task, list_tasks
    from engine.jobs import Worker
    from engine.messages import deliver

    people, completed = {}, 0
    for i, step in enumerate(steps):
        if step.get("expect_error"):
            continue
        if "task" in step:
            def open_task(element=step["task"]):
                return next((t for t in list_tasks(rt, case_id=case_id) if t["element_id"] == element), None)

            task = _wait(rt, open_task, f"task {step['task']} of case {case_id}")
            person = people.setdefault(step.get("user", "example"),
                                       ACTORS[min(len(people), len(ACTORS) - 1)].format(tenant=tenant))
            complete_task(rt, task["id"], person, step.get("data", {}))
            completed += 1
        elif "message" in step:  # to this case, whatever the example correlated by (its ids are not ours)
            deliver(rt, step["message"], {"case_id": case_id}, step.get("data") or {}, actor="demo")
        elif "jobs" in step:
            Worker(rt, name="demo-seed").run_due()
        else:  # e.g. {"advance": "P14D"}: the demo runs on the real clock
            log.info("demo case %s: step %s (%s) cannot be done on the real clock; stopped there", case_id, i,
                     ", ".join(step))
            break
    return completed
