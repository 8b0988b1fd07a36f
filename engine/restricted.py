"""Uploaded BPMN is code. Two walls keep it in its place.

1. At deploy, every script and expression is parsed and checked (``check_code``): no imports, no
   ``global``/``nonlocal``, no name or attribute starting with ``_``, no attribute that walks into frames or
   formats (``format``, ``gi_frame``, ``f_globals`` …), and no builtin outside ``SAFE_BUILTINS``.
2. At run time scripts execute with ``__builtins__`` replaced by ``SAFE_BUILTINS`` (``script_engine``).

Names that are not builtins are the case's own variables (task data) and stay allowed. The list of what a
script may use is documented for designers in docs/designer.md.
"""

import ast
import builtins
import json
from datetime import datetime, timedelta, timezone

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from .errors import CaseError

SAFE_BUILTIN_NAMES = (
    "abs all any bool dict divmod enumerate filter float int isinstance len list map max min range "
    "reversed round set sorted str sum tuple zip True False None"
).split()
SAFE_BUILTINS = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}

# Helpers every script and expression may use besides the case's variables.
HELPERS = {"datetime": datetime, "timedelta": timedelta, "timezone": timezone}

FORBIDDEN_NAMES = (set(dir(builtins)) - set(SAFE_BUILTIN_NAMES)) | {"__builtins__"}
FORBIDDEN_ATTRIBUTES = {
    "format", "format_map", "mro",
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code",
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "tb_next", "co_code",
}


class CodeViolation(Exception):
    """A script or expression breaks the rules; ``line`` is relative to the code's first line."""

    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line


def check_code(source, mode="exec"):
    """Raise CodeViolation unless ``source`` is Python our restricted environment may run.

    ``mode`` is "exec" for scripts and "eval" for expressions."""
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        what = "script" if mode == "exec" else "expression"
        raise CodeViolation(f"not a valid Python {what}: {exc.msg}", exc.lineno) from None
    except (RecursionError, MemoryError):  # CPython's parser gives up on very deep nesting this way
        raise CodeViolation("the code is nested too deeply to be checked") from None
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            raise CodeViolation("imports are not allowed", line)
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            raise CodeViolation("'global' and 'nonlocal' are not allowed", line)
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise CodeViolation(f"names starting with '_' are not allowed: {node.id}", line)
            if node.id in FORBIDDEN_NAMES:
                raise CodeViolation(f"'{node.id}' is not in the list of allowed names", line)
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise CodeViolation(f"attributes starting with '_' are not allowed: .{node.attr}", line)
            if node.attr in FORBIDDEN_ATTRIBUTES:
                raise CodeViolation(f"the attribute .{node.attr} is not allowed", line)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name.startswith("_"):
            raise CodeViolation(f"names starting with '_' are not allowed: {node.name}", line)
        if isinstance(node, ast.arg) and node.arg.startswith("_"):
            raise CodeViolation(f"names starting with '_' are not allowed: {node.arg}", line)
    return tree


class RestrictedEnvironment(TaskDataEnvironment):
    """Task data plus the helpers; ``__builtins__`` is the whitelist only."""

    def __init__(self):
        super().__init__({"__builtins__": SAFE_BUILTINS, **HELPERS})


class ScriptEngine(PythonScriptEngine):
    """The restricted script engine, with service calls routed to connectors registered by name.

    SpiffWorkflow 3.2.0's own ``call_service`` turns any failure into ``NameError: name 'script' is not
    defined``; this one raises a workflow error that names the service and the cause."""

    def __init__(self, services=None):
        super().__init__(environment=RestrictedEnvironment())
        self.services = services or {}

    def call_service(self, task, operation_name=None, operation_params=None, **_kwargs):
        service = self.services.get(operation_name)
        if service is None:
            raise WorkflowTaskException(f"no connector registered for service '{operation_name}'", task=task)
        if getattr(service, "wants_case", False):
            raise WorkflowTaskException(
                f"service '{operation_name}' needs its case and runs only as a background call: declare "
                '<spiffworkflow:retry retries="3"/> in the service task\'s serviceTaskOperator', task=task)
        params = {name: p["value"] for name, p in (operation_params or {}).items()}
        try:
            result = service(**params)
        except Exception as exc:  # any connector failure becomes a workflow error, not a crash
            raise WorkflowTaskException(
                f"service '{operation_name}' failed: {exc.__class__.__name__}: {exc}", task=task, exception=exc
            ) from exc
        return result if isinstance(result, str) else json.dumps(result)


def describe_workflow_error(exc):
    """A one-line message for a SpiffWorkflow error: element, line and the cause."""
    parts = []
    task = getattr(exc, "task", None)
    if task is not None:
        parts.append(f"[{task.task_spec.bpmn_id or task.task_spec.name}]")
    line = getattr(exc, "line_number", None)
    if line:
        parts.append(f"line {line}:")
    parts.append(str(exc.args[0] if exc.args else exc))
    error_line = getattr(exc, "error_line", None)
    if error_line:
        parts.append(f"(in: {error_line.strip()})")
    return CaseError(" ".join(parts))
