"""Compiling process models: from a bundle of uploaded files to checked, serialized specs.

A bundle is one folder's worth of files (``.bpmn``, ``.dmn``, JSON form files, templates). Compiling it
parses every XML file safely (``engine.safexml``), refuses what we cannot run, checks every script and
expression (``engine.restricted``), validates against the BPMN XSD, builds the SpiffWorkflow specs of
every executable process and reads the task metadata the 3.2.0 parsers do not keep (Camunda candidate
groups, assignee, due dates; Spiff form files). Nothing here touches the database.
"""

import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from connectors.services import default_services

from .calls import bind_targets, find_targets
from .camunda_expressions import ExpressionUnsupported, is_camunda_expression
from .camunda_expressions import translate as translate_camunda
from .camunda_tasks import Parser as CamundaTaskParser
from .camunda_tasks import check_task as check_camunda_task
from .dmn import check_dmn, split_decisions
from .errors import DeployError, Problem
from .form_files import camunda_task_form, check_forms
from .letters import check_bundle as check_letters
from .restricted import CodeViolation, check_code
from .safexml import UnsafeXml, parse_xml
from .specs import engine_config

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS, "spiffworkflow": SPIFF_NS}

SERIALIZERS = {
    # engine_config: stored specs restore with our timer (clock) and service-task classes (engine.specs)
    "spiff": BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(engine_config(SPIFF_CONFIG))),
    "camunda": BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(engine_config(CAMUNDA_CONFIG))),
}
_VALIDATOR = None


def validator():
    """The BPMN XSD validator, compiled once (it takes 10–20 ms)."""
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = BpmnValidator()
    return _VALIDATOR


# Elements SpiffWorkflow 3.2.0 cannot run; refused at deploy rather than failing in a running case.
UNSUPPORTED = {
    "complexGateway": "complex gateways are not supported",
    "compensateEventDefinition": "compensation events are not supported",
    "linkEventDefinition": "link events are not supported",
}
UNSUPPORTED_KIND = {"complexGateway": "complex gateway", "compensateEventDefinition": "compensation event",
                    "linkEventDefinition": "link event"}
# Elements whose text is a Python expression (eval) or a script (exec) that the engine will run.
EXPRESSION_TAGS = {
    "conditionExpression", "condition", "timeDate", "timeDuration", "timeCycle", "loopCardinality",
    "completionCondition", "formalExpression",
}
# SpiffWorkflow names its own start and end task specs "Start" and "End": a BPMN element with such an id
# silently replaces them and the process loses its start.
RESERVED_IDS = {"Start", "End"}
SCRIPT_TAGS = {"script", "preScript", "postScript"}

ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
ISO_CYCLE = re.compile(r"^R\d*/")


@dataclass
class Bundle:
    """Files of one model folder: relative path -> bytes. ``source`` names where they came from."""

    files: dict
    source: str = ""

    def content_hash(self):
        h = hashlib.sha256()
        for path in sorted(self.files):
            h.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).hexdigest().encode() + b"\n")
        return h.hexdigest()


@dataclass
class CompiledProcess:
    process_id: str
    name: str
    dialect: str
    spec: bytes  # zlib(JSON {"spec", "subprocess_specs"}); for a view-only process zlib(JSON null)
    meta: dict = field(default_factory=dict)
    executable: bool = True  # False: uploaded to be viewed (isExecutable="false"), never started


def local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def element_of(node):
    """The nearest ancestor (or self) with an id: the BPMN element a problem belongs to."""
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return None


def _named(node):
    """'id' ('name') of a BPMN element, for messages."""
    name = " ".join((node.get("name") or "").split())
    return f"{element_of(node)!r}" + (f" ({name!r})" if name else "")


def dialect_of(trees):
    """'camunda' for files from Camunda Modeler, 'spiff' for SpiffWorkflow/bpmn.io files and plain BPMN."""
    namespaces = set()
    for tree in trees:
        namespaces.update(tree.getroot().nsmap.values())
    if SPIFF_NS in namespaces:
        return "spiff"
    return "camunda" if CAMUNDA_NS in namespaces else "spiff"


def compile_bundle(bundle, max_bytes=10 * 1024 * 1024, lookup=None, services=None):
    """Check and compile every executable process of ``bundle``.

    ``lookup(process_id)`` finds the deployed target of a call activity whose process is not in the bundle
    (``engine.calls``; without it such a call is refused as missing). Returns a list of CompiledProcess;
    raises DeployError listing every problem (file, line, element). ``services`` is the connector registry
    Camunda service tasks are bound to (``rt.services``; default: ``connectors.services.default_services()``)."""
    services = default_services() if services is None else services
    bpmn, dmn = _parse_files(bundle, max_bytes)
    dialect = dialect_of(bpmn.values())
    if not any(_executable_processes(tree) for tree in bpmn.values()):
        return _view_only(bpmn, dialect, bundle)
    problems, decisions = [], _decision_refs(bpmn)
    for path, tree in {**bpmn, **dmn}.items():
        problems.extend(_check_tree(path, tree, dialect, services, decisions))
    problems += _check_xsd(bpmn, bundle)
    problems += [p for path, tree in bpmn.items() for p in check_forms(path, tree, bundle.files)]
    problems += [p for path, tree in bpmn.items() for p in _event_subprocess_problems(path, tree)]
    problems += _missing_decisions(bpmn, dmn)
    if problems:
        raise DeployError(problems)
    parser = (CamundaTaskParser(services=services, validator=validator()) if dialect == "camunda"
              else SpiffBpmnParser(validator=validator()))
    for path, tree in bpmn.items():
        _add(parser.add_bpmn_xml, tree, path, problems)
    for path, tree in dmn.items():
        for root in split_decisions(path, tree):  # the library reads one decision per file
            _add(parser.add_dmn_xml, root, path, problems)
    _mark_event_subprocesses(bpmn)
    targets, call_problems = find_targets(bpmn, dialect, lookup)  # call activities into other models
    problems += call_problems
    if problems:
        raise DeployError(problems)
    process_ids = parser.get_process_ids()
    if not process_ids:
        raise DeployError([Problem(next(iter(bpmn)), None, None,
                                   'no executable process (a process needs isExecutable="true" to be run)')])
    lines = _element_lines(bpmn)
    compiled = [c for c in (_compile_process(parser, pid, dialect, bpmn, bundle, lines, problems)
                            for pid in process_ids) if c is not None]
    letters, letter_tasks, letter_problems = check_letters(bpmn, bundle.files, lines, SPIFF_NS, CAMUNDA_NS)
    problems += letter_problems
    if problems:
        raise DeployError(problems)
    for c in compiled:  # send tasks with letters and their Postversand tasks (engine.letters, engine.dispatch)
        c.meta["letters"] = letters
        for element, extra in letter_tasks.items():
            c.meta["tasks"][element] = {**c.meta["tasks"].get(element, {}), **extra}
    if targets:
        problems += bind_targets(compiled, targets, lines)
        if problems:
            raise DeployError(problems)
    return compiled


def _view_only(bpmn, dialect, bundle=None):
    """A bundle without an executable process is kept to be viewed: checked against the XSD, never run."""
    problems, compiled = [], []
    lines = _element_lines(bpmn)
    for path, tree in bpmn.items():
        xsd_problems = _xsd_problems(path, tree, bundle.files.get(path) if bundle else None)
        if xsd_problems:
            problems += xsd_problems
            continue
        for process in tree.getroot().iter(f"{{{BPMN_NS}}}process"):
            pid = process.get("id")
            if pid and pid not in {c.process_id for c in compiled}:
                compiled.append(CompiledProcess(
                    process_id=pid, name=process.get("name") or pid, dialect=dialect, executable=False,
                    spec=zlib.compress(b"null"),
                    meta={"tasks": {}, "elements": {k: list(v) for k, v in lines.items()}}))
    if not compiled and not problems:
        problems.append(Problem(next(iter(bpmn)), None, None, "the file holds no process"))
    if problems:
        raise DeployError(problems)
    return compiled


MAX_XSD_ERRORS = 20
XSD_PREFIXES = {BPMN_NS: "bpmn", CAMUNDA_NS: "camunda", "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
                "http://www.omg.org/spec/DD/20100524/DC": "dc", "http://www.omg.org/spec/DD/20100524/DI": "di"}


def _check_xsd(bpmn, bundle):
    problems = []
    for path, tree in bpmn.items():
        problems += _xsd_problems(path, tree, bundle.files.get(path))
    return problems


def _xsd_problems(path, tree, data):
    """BPMN XSD errors with line, column and element (the library's validator reports the line only)."""
    checker = validator()
    checker.preprocess(tree)
    if checker.validator.validate(tree):
        return []
    problems = []
    for error in list(checker.validator.error_log)[:MAX_XSD_ERRORS]:
        node = _node_at(tree, error.path)
        column = error.column or _column_of(data, error.line, node)
        message = error.message
        for uri, prefix in XSD_PREFIXES.items():
            message = message.replace(f"{{{uri}}}", f"{prefix}:")
        problems.append(Problem(path, error.line or None, element_of(node) if node is not None else None,
                                f"XML schema error: {message}", column=column))
    return problems


def _node_at(tree, xpath):
    try:
        found = tree.xpath(xpath, namespaces={k: v for k, v in tree.getroot().nsmap.items() if k})
    except (etree.XPathError, TypeError):
        return None
    return found[0] if isinstance(found, list) and found and isinstance(found[0], etree._Element) else None


def _column_of(data, line, node):
    """1-based column of the element's start tag on ``line`` of the file (libxml2 gives none for schema errors)."""
    if not data or not line or node is None or not isinstance(node.tag, str):
        return None
    lines = data.split(b"\n")
    text = lines[line - 1].decode("utf-8", "replace") if line <= len(lines) else ""
    qname = (f"{node.prefix}:" if node.prefix else "") + local(node.tag)
    at = text.find("<" + qname)
    return at + 1 if at >= 0 else None


def _parse_files(bundle, max_bytes):
    """Safely parse every BPMN and DMN file of the bundle: ({path: tree}, {path: tree})."""
    problems, bpmn, dmn = [], {}, {}
    for path, data in sorted(bundle.files.items()):
        lower = path.lower()
        if not lower.endswith((".bpmn", ".bpmn20.xml", ".dmn")):
            continue
        try:
            tree = parse_xml(data, path, max_bytes)
        except UnsafeXml as exc:
            problems.append(exc.problem)
            continue
        (dmn if lower.endswith(".dmn") else bpmn)[path] = tree
    if not bpmn and not problems:
        problems.append(Problem(bundle.source or "(upload)", None, None,
                                "no .bpmn file in the upload (a decision table alone is no process: upload the "
                                ".dmn together with the .bpmn that uses it)" if dmn else "no .bpmn file in the upload"))
    if problems:
        raise DeployError(problems)
    return bpmn, dmn


def _compile_process(parser, pid, dialect, trees, bundle, lines, problems):
    """Spec, subprocess specs and task metadata of one executable process, or None (problems appended)."""
    try:
        spec = parser.get_spec(pid)
        # a target in another model is None here: engine.calls.bind_targets copies its stored specs in
        subprocess_specs = {k: v for k, v in parser.get_subprocess_specs(pid, require_call_activity_specs=False)
                            .items() if v is not None}
    except (ValidationException, SpiffWorkflowException) as exc:
        problems.append(_problem_from(exc, lines.get(pid, (None, None))[0], lines))
        return None
    tasks = {}
    for s in [spec, *subprocess_specs.values()]:
        for ts in s.task_specs.values():
            if getattr(ts, "manual", False):
                tasks[ts.bpmn_id or ts.name] = _task_meta(ts, trees, bundle, lines, problems)
    serializer = SERIALIZERS[dialect]
    try:
        blob = {"spec": serializer.to_dict(spec),
                "subprocess_specs": {k: serializer.to_dict(v) for k, v in subprocess_specs.items()}}
        data = json.dumps(blob, separators=(",", ":")).encode()
    except TypeError as exc:
        file_name, line = lines.get(pid, (None, None))
        problems.append(Problem(file_name, line, pid, f"the process uses an element we cannot store: {exc}"))
        return None
    return CompiledProcess(process_id=pid, name=spec.description or pid, dialect=dialect,
                           spec=zlib.compress(data, 6),
                           meta={"tasks": tasks, "elements": {k: list(v) for k, v in lines.items()}})


def _add(method, node, path, problems):
    try:
        method(node, path)
    except (ValidationException, SpiffWorkflowException) as exc:
        problems.append(_problem_from(exc, path, {}))
    except etree.LxmlError as exc:
        problems.append(Problem(path, None, None, f"XML schema error: {exc}"))


def _problem_from(exc, path, lines):
    file_name = getattr(exc, "file_name", None) or path
    element = getattr(exc, "id", None) or None
    line = getattr(exc, "line_number", None) or None
    if line is None and element and element in lines:
        file_name, line = lines[element]
    message = str(exc.args[0]) if exc.args else str(exc)
    hint = next((h for text, h in LIBRARY_HINTS.items() if text in message), None)
    return Problem(file_name, line, element, f"{message.strip()} ({hint})" if hint else message)


# What to do about the SpiffWorkflow messages designers meet most (the corpus, docs/conformance.md)
LIBRARY_HINTS = {
    "A Service Task must have an operator": "name the connector to call with spiffworkflow:serviceTaskOperator",
    "Time Specification Error": "the timer needs a date, a duration or a cycle (ISO-8601, e.g. PT5M)",
    "Exactly one start event is required": "give the subprocess exactly one (plain) start event",
    "Cannot resolve data": "a data input or output association points to a data object that is not there",
    "must specify a cardinality or a loop input": "set loopCardinality or a collection for the multi-instance",
}


def _element_lines(trees):
    lines = {}
    for path, tree in trees.items():
        for node in tree.iter():
            if isinstance(node.tag, str) and node.get("id") and node.get("id") not in lines:
                lines[node.get("id")] = (path, node.sourceline)
    return lines


def _executable_processes(tree):
    return [p for p in tree.getroot().iter(f"{{{BPMN_NS}}}process") if p.get("isExecutable") == "true"]


def _event_subprocess_problems(path, tree):
    """SpiffWorkflow 3.2.0 runs every event subprocess as non-interrupting: refuse interrupting ones rather than
    let the process go on beside them."""
    problems = []
    for node in tree.getroot().iter(f"{{{BPMN_NS}}}subProcess", f"{{{BPMN_NS}}}transaction"):
        if node.get("triggeredByEvent") != "true":
            continue
        for start in node.findall(f"{{{BPMN_NS}}}startEvent"):
            if start.get("isInterrupting", "true") != "false":
                problems.append(Problem(path, start.sourceline, start.get("id"),
                                        f"the start event of event subprocess {node.get('id')!r} interrupts the "
                                        "process, which is not supported (it would run beside it): use an "
                                        'interrupting boundary event, or isInterrupting="false"'))
    return problems


def _mark_event_subprocesses(trees):
    """SpiffWorkflow 3.2.0 looks for ``triggeredByEvent`` in the BPMN namespace, where no modeler writes it, and
    silently parses an event subprocess as a plain, unreachable subprocess. Set it where the library looks —
    after the XSD check (``add_bpmn_xml``), before the processes are parsed (``get_spec``)."""
    for tree in trees.values():
        for node in tree.getroot().iter(f"{{{BPMN_NS}}}subProcess", f"{{{BPMN_NS}}}transaction"):
            if node.get("triggeredByEvent") == "true":
                node.set(f"{{{BPMN_NS}}}triggeredByEvent", "true")


def _missing_decisions(bpmn, dmn):
    """Business rule tasks whose decision (camunda:decisionRef, spiffworkflow:calledDecisionId) no .dmn file of
    the upload defines: the parser would only say 'No DMN Diagram available with id …'."""
    defined = {node.get("id") for tree in dmn.values() for node in tree.getroot().iter()
               if isinstance(node.tag, str) and local(node.tag) == "decision"}
    problems = []
    for path, tree in bpmn.items():
        for root in _executable_processes(tree):
            for task in root.iter(f"{{{BPMN_NS}}}businessRuleTask"):
                ref = task.get(f"{{{CAMUNDA_NS}}}decisionRef")
                if ref is None:
                    called = task.find(f".//{{{SPIFF_NS}}}calledDecisionId")
                    ref = called.text if called is not None else None
                ref = (ref or "").strip()
                if ref and "${" not in ref and "#{" not in ref and ref not in defined:
                    problems.append(Problem(path, task.sourceline, task.get("id"),
                                            f"business rule task {_named(task)}: decision {ref!r} is not in the "
                                            "upload (upload the .dmn file that defines it)"))
    return problems


def _decision_refs(trees):
    """Decision ids the business rule tasks of the bundle use (Camunda's decisionRef)."""
    return {node.get(f"{{{CAMUNDA_NS}}}decisionRef") for tree in trees.values()
            for node in tree.getroot().iter(f"{{{BPMN_NS}}}businessRuleTask")} - {None}


def _check_tree(path, tree, dialect, services=None, decisions=None):
    """Refuse unsupported elements and unsafe code; translate Camunda's literal timer texts and FEEL cells."""
    if path.lower().endswith(".dmn"):
        return check_dmn(path, tree, dialect, decisions)
    problems = []
    roots = _executable_processes(tree) if path.lower().endswith((".bpmn", ".xml")) else [tree.getroot()]
    for store in tree.getroot().iter(f"{{{BPMN_NS}}}dataStore"):  # the parser would fail without a line
        problems.append(Problem(path, store.sourceline, store.get("id"),
                                f"data store {store.get('name')!r} has no implementation: data stores are not "
                                "supported; model the access as a service task"))
    literal_timers = SPIFF_NS not in tree.getroot().nsmap.values()  # Camunda Modeler and plain BPMN
    for root in roots:
        for node in root.iter():
            name = local(node.tag)
            if node.get("id") in RESERVED_IDS and node is not root:
                problems.append(Problem(path, node.sourceline, node.get("id"),
                                        f"the id {node.get('id')!r} is reserved by the engine: rename the element"))
            if name in UNSUPPORTED:  # named by id and name; an event definition by its event
                owner = node.getparent() if name.endswith("EventDefinition") and node.getparent() is not None \
                    else node
                problems.append(Problem(path, node.sourceline, element_of(owner),
                                        f"{UNSUPPORTED_KIND[name]} {_named(owner)}: {UNSUPPORTED[name]}"))
            elif dialect == "camunda" and name in CAMUNDA_TASKS:  # connectors, decisions (engine.camunda_tasks)
                problems.extend(check_camunda_task(path, node, services or {}))
            elif name in SCRIPT_TAGS and node.text and node.text.strip():
                problems.extend(_check_script(path, node))
            elif name in EXPRESSION_TAGS and node.text and node.text.strip():
                timer_problems = _translate_timer(path, node) if name.startswith("time") and literal_timers else []
                problems.extend(timer_problems or _check(path, node, node.text.strip(), "eval"))
            if local(node.tag) == "parameter" and node.get("value") is not None:
                problems.extend(_check(path, node, node.get("value"), "eval"))
    return problems


CAMUNDA_TASKS = {"serviceTask", "sendTask", "businessRuleTask"}


def _check_script(path, node):
    language = (node.get("scriptFormat") or node.getparent().get("scriptFormat") or "python").lower()
    if local(node.tag) == "script" and language not in ("python", "py", "text/x-python"):
        return [Problem(path, node.sourceline, element_of(node),
                        f"script language {language!r} is not supported: scripts are (restricted) Python")]
    return _check(path, node, node.text, "exec")


def _translate_timer(path, node):
    """Camunda writes timers as literal ISO-8601 text; SpiffWorkflow evaluates Python. Quote them."""
    text = node.text.strip()
    if text.startswith("${") or text.startswith("#{"):
        return [Problem(path, node.sourceline, element_of(node),
                        f"timer expression {text!r} uses Camunda's expression language, which is not supported")]
    if ISO_DURATION.match(text) or ISO_DATETIME.match(text) or ISO_CYCLE.match(text):
        node.text = repr(text)
        return []
    if len(text.split()) >= 5:
        return [Problem(path, node.sourceline, element_of(node),
                        f"cron timer cycles ({text!r}) are not supported; use an ISO-8601 cycle like R3/PT10M")]
    return []


def _check(path, node, code, mode):
    if mode == "eval" and is_camunda_expression(code):
        if local(node.tag) not in EXPRESSION_TAGS:  # an attribute value: nowhere to put a translation
            return [Problem(path, node.sourceline, element_of(node),
                            f"expression {code.strip()!r} uses Camunda's expression language (${{…}}), "
                            "which is not supported here: write a Python expression such as approved == True")]
        try:
            code = node.text = translate_camunda(code)  # the parser reads the translation, the file keeps ${…}
        except ExpressionUnsupported as exc:
            return [Problem(path, node.sourceline, element_of(node), str(exc))]
    try:
        check_code(code, mode)
    except CodeViolation as exc:
        line = node.sourceline
        if exc.line and mode == "exec":
            line = node.sourceline + exc.line - 1
        what = "script" if mode == "exec" else "expression"
        return [Problem(path, line, element_of(node), f"{what} refused: {exc}")]
    return []


def _find_element(trees, element_id):
    for tree in trees.values():
        found = tree.getroot().xpath("//*[@id=$id]", id=element_id)
        if found:
            return found[0]
    return None


def _split(value):
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _task_meta(ts, trees, bundle, lines, problems):
    """What the task table and the form need for one user task."""
    element_id = ts.bpmn_id or ts.name
    node = _find_element(trees, element_id)
    meta = {"title": ts.bpmn_name or element_id, "groups": [], "candidate_users": [], "assignee": None,
            "due": None, "follow_up": None, "form": None, "documentation": getattr(ts, "documentation", None)}
    if ts.lane:
        meta["groups"].append(ts.lane)
    props = (getattr(ts, "extensions", None) or {}).get("properties", {}) if hasattr(ts, "extensions") else {}
    if node is not None:
        camunda = {local(k): v for k, v in node.attrib.items() if k.startswith(f"{{{CAMUNDA_NS}}}")}
        camunda = _camunda_assignment(node, camunda, meta, lines.get(element_id, (None, None)), problems)
        meta["groups"] += _split(camunda.get("candidateGroups"))
        meta["candidate_users"] += _split(camunda.get("candidateUsers"))
        meta["assignee"] = camunda.get("assignee")
        meta["due"] = camunda.get("dueDate")
        meta["follow_up"] = camunda.get("followUpDate")
        form_fields = node.findall(f".//{{{CAMUNDA_NS}}}formField")
        meta["form"] = camunda_form_schema(form_fields) if form_fields else _camunda_form(node, bundle, problems)
    meta["groups"] += _split(props.get("candidateGroups"))
    meta["candidate_users"] += _split(props.get("candidateUsers"))
    meta["assignee"] = props.get("assignee") or meta["assignee"]
    meta["due"] = props.get("dueDate") or meta["due"]
    due_var = (props.get("dueDateVariable") or "").strip()  # a variable with an ISO duration or date, e.g. a
    if due_var:                                             # city's processing deadline ("P30D"); dueDate else
        meta["due_variable"] = due_var
    # Vier-Augen: the element id of an earlier task whose completer may not complete this one
    camunda_props = {p.get("name"): p.get("value") for p in node.iter(f"{{{CAMUNDA_NS}}}property")} \
        if node is not None else {}
    meta["four_eyes_of"] = (props.get("four_eyes_of") or camunda_props.get("four_eyes_of") or "").strip() or None
    # Candidate groups chosen in the case: the name of a variable holding a group or a list of groups
    groups_var = (props.get("candidateGroupsVariable") or "").strip()
    if groups_var:
        if not groups_var.isidentifier() or groups_var.startswith("_"):
            file_name, line = lines.get(element_id, (None, None))
            problems.append(Problem(file_name, line, element_id,
                                    f"candidateGroupsVariable {groups_var!r} must be the name of a variable"))
        meta["groups_variable"] = groups_var
    schema_file = props.get("formJsonSchemaFilename")
    if schema_file:
        data = _bundle_file(bundle, schema_file)  # a missing file is refused by check_forms (engine.form_files)
        if data is not None:
            try:
                meta["form"] = json.loads(data)
            except ValueError as exc:
                problems.append(Problem(schema_file, None, element_id, f"form file is not valid JSON: {exc}"))
    meta["groups"] = sorted(set(meta["groups"]))
    return meta


ONE_VARIABLE = re.compile(r"^\$\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}$")


def _is_expression(value):
    return "${" in value or "#{" in value


def _camunda_assignment(node, camunda, meta, where, problems):
    """Check Camunda's candidateGroups/candidateUsers/assignee/dueDate/followUpDate of a user task.

    ``${variable}`` in candidateGroups becomes the task's groups variable (groups chosen in the case), in
    dueDate/followUpDate a variable holding an ISO date or duration; any other expression, and a date that is
    neither ISO-8601 date/date-time nor duration, is refused. Returns the attributes left to read literally."""
    from .cases import _due  # engine.cases reads the due dates of new tasks; imported late (it is the heavier one)

    file_name, line = where
    label = f"user task {_named(node)}"
    kept = dict(camunda)

    def refuse(attr, value, why):
        problems.append(Problem(file_name, line or node.sourceline, node.get("id"),
                                f"{label}: camunda:{attr}={value!r} {why}"))
        kept.pop(attr, None)

    groups = (camunda.get("candidateGroups") or "").strip()
    if _is_expression(groups):
        found = ONE_VARIABLE.match(groups)
        if found and not found.group(1).startswith("_"):
            meta["groups_variable"] = found.group(1)  # engine.cases: the groups named by this case variable
            kept.pop("candidateGroups")
        else:
            refuse("candidateGroups", groups, "is an expression we cannot evaluate: name the groups "
                   "(a,b) or one variable that holds a group or a list of groups, e.g. ${abteilung}")
    for attr in ("candidateUsers", "assignee"):
        value = (camunda.get(attr) or "").strip()
        if _is_expression(value):
            refuse(attr, value, "is an expression: users must be named here (an expression such as ${initiator} "
                   "is not evaluated); route the task to groups instead, e.g. camunda:candidateGroups=\"${abteilung}\"")
    for attr, key in (("dueDate", "due_variable"), ("followUpDate", "follow_up_variable")):
        value = (camunda.get(attr) or "").strip()
        if not value:
            continue
        if _is_expression(value):
            found = ONE_VARIABLE.match(value)
            if found and not found.group(1).startswith("_"):
                meta[key] = found.group(1)  # a variable with an ISO date, date-time or duration (engine.cases)
                kept.pop(attr)
            else:
                refuse(attr, value, "is an expression we cannot evaluate: write an ISO-8601 date, date-time or "
                       "duration (2026-12-01, 2026-12-01T10:00:00, P2D) or one variable holding one, e.g. ${frist}")
        elif _due(value, datetime.now(UTC)) is None:
            refuse(attr, value, "is not an ISO-8601 date, date-time or duration "
                   "(e.g. 2026-12-01, 2026-12-01T10:00:00, P2D, PT4H)")
    return kept


def _camunda_form(node, bundle, problems):
    """The JSON Schema of the Camunda Form (camunda:formRef, camunda-forms:… formKey) a task shows, or None."""
    schema, trouble = camunda_task_form(node, bundle.files)
    if trouble:
        problems.append(Problem(bundle.source or "(upload)", node.sourceline, node.get("id"), trouble))
    return schema


def _bundle_file(bundle, name):
    for path, data in bundle.files.items():
        if path == name or path.rsplit("/", 1)[-1] == name:
            return data
    return None


CAMUNDA_TYPES = {"string": {"type": "string"}, "long": {"type": "integer"}, "boolean": {"type": "boolean"},
                 "date": {"type": "string", "format": "date"}}


def camunda_form_schema(fields):
    """A JSON Schema for Camunda ``formData`` fields (types, enum values, required/min/max)."""
    schema = {"type": "object", "properties": {}, "required": []}
    for f in fields:
        fid = f.get("id")
        prop = dict(CAMUNDA_TYPES.get(f.get("type") or "string", {"type": "string"}))
        prop["title"] = f.get("label") or fid
        if f.get("defaultValue") is not None:
            prop["default"] = f.get("defaultValue")
        if f.get("type") == "enum":
            values = f.findall(f"{{{CAMUNDA_NS}}}value")
            prop["enum"] = [v.get("id") for v in values]
            prop["enumNames"] = [v.get("name") or v.get("id") for v in values]
        for c in f.findall(f".//{{{CAMUNDA_NS}}}constraint"):
            name, config = c.get("name"), c.get("config")
            if name == "required":
                schema["required"].append(fid)
            elif name in ("min", "max") and config is not None:
                prop["minimum" if name == "min" else "maximum"] = float(config)
            elif name in ("minlength", "maxlength") and config is not None:
                prop["minLength" if name == "minlength" else "maxLength"] = int(config)
        schema["properties"][fid] = prop
    return schema


def load_specs(dialect, blob):
    """Restore (spec, subprocess_specs) from a stored version's spec blob."""
    serializer = SERIALIZERS[dialect]
    data = json.loads(zlib.decompress(blob))
    spec = serializer.from_dict(data["spec"])
    subs = {k: serializer.from_dict(v) for k, v in data["subprocess_specs"].items()}
    return spec, subs
