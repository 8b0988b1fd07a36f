"""Service-task connectors: callables registered by name.

A BPMN service task names an operation (``spiffworkflow:serviceTaskOperator name="…"``); the engine's
script engine looks the name up in a registry (a mapping name -> callable) and calls it with the evaluated
parameters as keyword arguments. The result must be JSON-serializable; it lands in the task's result
variable. Built-in connectors register here the same way a third-party one would.
"""

from typing import Any, Protocol


class ServiceConnector(Protocol):
    """One service: keyword parameters in, a JSON-serializable result out."""

    def __call__(self, **params: Any) -> Any:
        """Do the call; raise any exception on failure (the engine turns it into a workflow error)."""


class CaseContext:
    """What a connector that declares ``wants_case = True`` gets as its ``case`` argument: the runtime and
    the case the call belongs to (id, tenant, process, Aktenzeichen). Such connectors run only as background
    service calls (the task declares ``<spiffworkflow:retry …/>``), where the engine knows the case; the
    tenant comes from the case row, never from the model's parameters."""

    def __init__(self, rt, case_id, tenant):
        self.rt, self.case_id, self.tenant = rt, int(case_id), tenant
        from sqlalchemy import select

        from engine.schema import Case

        with rt.reader.connect() as conn:
            row = conn.execute(select(Case.aktenzeichen, Case.process_id, Case.created_at)
                               .where(Case.id == self.case_id)).first()
        if row is None:
            raise LookupError(f"no case {case_id}")
        self.aktenzeichen, self.process_id = row[0], row[1]
        created = row[2]
        self.created_at = created.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(created, "strftime") else str(created)


def wants_case(service):
    """Whether the connector needs its case (``CaseContext``) passed as ``case``."""
    return bool(getattr(service, "wants_case", False))


def echo(**params):
    """Returns its parameters: a connector for demos and tests of the service-task path."""
    return params


def default_services():
    """The registry every runtime starts with."""
    from .treasury import nummer_vergeben, sollstellung

    return {"echo": echo, "kasse_sollstellung": sollstellung, "nummer_vergeben": nummer_vergeben}
