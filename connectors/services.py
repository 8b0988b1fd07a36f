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


def echo(**params):
    """Returns its parameters: a connector for demos and tests of the service-task path."""
    return params


def default_services():
    """The registry every runtime starts with."""
    return {"echo": echo}
