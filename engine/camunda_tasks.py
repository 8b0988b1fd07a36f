"""Camunda Modeler's service tasks, send tasks and business rule tasks, bound to what ozgflow runs.

Service and send tasks
----------------------
Camunda names the code behind a task in one of three ways; each maps to a connector registered by name in
the runtime's services registry (``connectors/services.py``, ``rt.services``):

==============================================  ===============================================
in the model                                    connector name looked up
==============================================  ===============================================
``camunda:class="org.example.ArchiveService"``  the fully qualified class name, else the simple
                                                name ``ArchiveService``
``camunda:delegateExpression="${archiveService}"``  the bean name ``archiveService`` (also ``#{…}``)
``camunda:type="external" camunda:topic="t"``   the topic ``t``
==============================================  ===============================================

``camunda:expression`` (a Java method call), connectors (``camunda:connector``), other ``camunda:type``
values and a service task without any of these are refused at upload, as is a name no connector is
registered under (``check_task``). A send task without one of the three keeps its BPMN meaning (a message,
or a letter: contract A); only a send task with one of them calls a connector.

The call (``ConnectorTask``): with ``camunda:inputOutput`` input parameters the connector receives exactly
those (text → a string, ``${…}`` → the translated expression's value); without them it receives the case's
variables — all of them when it takes ``**kwargs``, else those its signature names. A dict result is merged
into the case data; with output parameters only those are set (each ``${…}`` evaluated over the case data
and the result). Any other result is stored in ``camunda:resultVariable`` if the task names one; ``None`` is
ignored. Calls are inline (within the step); a failure stops the case with an error naming the connector.

Business rule tasks
-------------------
``camunda:decisionRef`` names the decision (its DMN file in the same upload). ``camunda:resultVariable``
with ``camunda:mapDecisionResult`` stores the result the way Camunda does: ``singleEntry`` (the one output
value), ``singleResult`` (one rule's outputs as a dict), ``collectEntries`` (list of the one output's values),
``resultList`` (default: list of dicts). Without a result variable the outputs are merged into the data.
"""

import inspect
import json

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.event_parsers import ReceiveTaskParser, SendTaskParser
from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter
from SpiffWorkflow.bpmn.specs.defaults import ServiceTask
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import CamundaEventDefinitionParser
from SpiffWorkflow.camunda.parser.task_spec import BusinessRuleTaskParser, CamundaTaskParser
from SpiffWorkflow.camunda.specs.business_rule_task import BusinessRuleTask
from SpiffWorkflow.dmn.serializer.task_spec import BaseBusinessRuleTaskConverter
from SpiffWorkflow.util.deep_merge import DeepMerge

from .camunda_expressions import ExpressionUnsupported, is_camunda_expression
from .camunda_expressions import translate as translate_camunda
from .errors import Problem
from .restricted import CodeViolation, check_code

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
MAP_DECISION_RESULT = ("resultList", "singleEntry", "singleResult", "collectEntries")


def _c(name):
    return f"{{{CAMUNDA_NS}}}{name}"


def _label(node):
    name = node.get("name")
    name = " ".join(name.split()) if name else None
    return f"{node.get('id')!r}" + (f" ({name!r})" if name else "")


def binding_of(node):
    """(kind, name) of a Camunda task's implementation: ("class", fqcn), ("delegateExpression", bean),
    ("external", topic); ("expression", text), ("other", what) or None when there is none."""
    if node.get(_c("class")):
        return "class", node.get(_c("class")).strip()
    if node.get(_c("delegateExpression")) is not None:
        return "delegateExpression", node.get(_c("delegateExpression")).strip()
    if node.get(_c("expression")) is not None:
        return "expression", node.get(_c("expression")).strip()
    kind = node.get(_c("type"))
    if kind == "external":
        return "external", (node.get(_c("topic")) or "").strip()
    if kind:
        return "other", f'camunda:type="{kind}"'
    if node.find(f"{{{BPMN_NS}}}extensionElements/{_c('connector')}") is not None:
        return "other", "a Camunda connector (camunda:connector)"
    return None


def candidates(kind, value):
    """Connector names to look up for a binding, most specific first."""
    if kind == "class":
        simple = value.rsplit(".", 1)[-1].rsplit("$", 1)[-1]
        return [value] if simple == value else [value, simple]
    if kind == "delegateExpression":
        inner = value[2:-1].strip() if value[:2] in ("${", "#{") and value.endswith("}") else ""
        return [inner] if inner.isidentifier() else []
    return [value] if value else []


def resolve(kind, value, services):
    """The registered connector name for a binding, or None."""
    return next((n for n in candidates(kind, value) if n in services), None)


def check_task(path, node, services):
    """Problems of one Camunda service/send task: unsupported binding, missing connector, bad parameters."""
    tag = node.tag.rsplit("}", 1)[-1]
    if tag == "businessRuleTask":
        return _check_decision_task(path, node)
    binding = binding_of(node)
    what = "service task" if tag == "serviceTask" else "send task"
    where = (path, node.sourceline, node.get("id"))
    if binding is None:
        if tag == "serviceTask":
            return [Problem(*where, f"{what} {_label(node)} has no implementation: name a connector with "
                                    'camunda:class, camunda:delegateExpression="${name}" or camunda:type="external" '
                                    "with camunda:topic")]
        return []
    kind, value = binding
    if kind == "expression":
        return [Problem(*where, f"{what} {_label(node)}: camunda:expression {value!r} calls Java code, which we "
                                "cannot run; register a connector and name it with "
                                'camunda:delegateExpression="${name}" or camunda:type="external" camunda:topic="name"')]
    if kind == "other":
        return [Problem(*where, f"{what} {_label(node)}: {value} is not supported; use camunda:class, "
                                "camunda:delegateExpression or an external topic, bound to a registered connector")]
    names = candidates(kind, value)
    if not names:
        shown = {"delegateExpression": "camunda:delegateExpression", "external": "camunda:topic"}.get(kind, kind)
        return [Problem(*where, f"{what} {_label(node)}: {shown} {value!r} does not name a connector"
                                + (" (write ${beanName})" if kind == "delegateExpression" else ""))]
    problems = []
    if resolve(kind, value, services) is None:
        attr = {"class": "camunda:class", "delegateExpression": "camunda:delegateExpression",
                "external": "camunda:topic"}[kind]
        listed = " or ".join(repr(n) for n in names)
        problems.append(Problem(*where, f"{what} {_label(node)}: no connector is registered as {listed} "
                                        f"(from {attr}={value!r}); register one in the runtime's services "
                                        f"(connectors/services.py)"))
    problems.extend(_check_io(path, node))
    return problems


def _check_decision_task(path, node):
    where = (path, node.sourceline, node.get("id"))
    if not node.get(_c("decisionRef")):
        binding = binding_of(node)
        how = f" ({binding[0]} {binding[1]!r} is Java code we cannot run)" if binding else ""
        return [Problem(*where, f"business rule task {_label(node)} needs camunda:decisionRef naming a decision of a "
                                f".dmn file in the upload{how}")]
    mapping = node.get(_c("mapDecisionResult"))
    if mapping and mapping not in MAP_DECISION_RESULT:
        return [Problem(*where, f"business rule task {_label(node)}: camunda:mapDecisionResult {mapping!r} is not "
                                f"one of {', '.join(MAP_DECISION_RESULT)}")]
    return []


def _io_parameters(node, which):
    io = node.find(f"{{{BPMN_NS}}}extensionElements/{_c('inputOutput')}")
    return [] if io is None else io.findall(_c(which))


def _check_io(path, node):
    problems = []
    for param in _io_parameters(node, "inputParameter") + _io_parameters(node, "outputParameter"):
        if len(param):
            problems.append(Problem(path, param.sourceline, node.get("id"),
                                    f"parameter {param.get('name')!r} of {_label(node)}: only text and ${{…}} values "
                                    "are supported (no camunda:list, camunda:map or camunda:script)"))
            continue
        try:
            _parameter_code(param)
        except (ExpressionUnsupported, CodeViolation) as exc:
            problems.append(Problem(path, param.sourceline, node.get("id"),
                                    f"parameter {param.get('name')!r} of {_label(node)}: {exc}"))
    return problems


def _parameter_code(param):
    """A parameter's value as Python: ``${…}`` translated, other text as a string literal."""
    text = param.text or ""
    if is_camunda_expression(text):
        code = translate_camunda(text.strip())
        check_code(code, "eval")
        return code
    return repr(text) if text.strip() else "None"


class ConnectorTask(ServiceTask):
    """A Camunda service or send task that calls a registered connector (see the module's docstring)."""

    def __init__(self, wf_spec, bpmn_id, connector, binding, parameters=None, results=None, result_variable=None,
                 **kwargs):
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.connector = connector
        self.binding = binding  # "class: org.x.Y" — shown in errors
        self.parameters = parameters  # [[name, python]] or None: the case's variables
        self.results = results  # [[name, python]] or None: merge a dict result
        self.result_variable = result_variable

    def _execute(self, task):
        engine = task.workflow.script_engine
        if self.parameters is not None:
            params = {name: engine.evaluate(task, code) for name, code in self.parameters}
        else:
            params = _variables_for(getattr(engine, "services", {}).get(self.connector), task.data)
        answer = engine.call_service(task, operation_name=self.connector,
                                     operation_params={k: {"value": v} for k, v in params.items()})
        try:
            result = json.loads(answer) if isinstance(answer, str) else answer
        except ValueError:  # a plain text answer
            result = answer
        if self.results is not None:
            context = result if isinstance(result, dict) else {}
            for name, code in self.results:
                task.data[name] = engine.evaluate(task, code, external_context=context)
        elif isinstance(result, dict):
            task.data.update(result)
        elif result is not None:
            if not self.result_variable:
                raise WorkflowTaskException(
                    f"connector '{self.connector}' ({self.binding}) returned {type(result).__name__}, not an object: "
                    "name a camunda:resultVariable for it", task=task)
            task.data[self.result_variable] = result
        return True


def _variables_for(service, data):
    """The case's variables a connector takes: all for ``**kwargs`` (or an unknown signature), else by name."""
    try:
        params = inspect.signature(service).parameters if service is not None else None
    except (TypeError, ValueError):
        params = None
    if params is None or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(data)
    return {k: v for k, v in data.items() if k in params}


class ConnectorTaskConverter(BpmnTaskSpecConverter):
    def to_dict(self, spec):
        dct = self.get_default_attributes(spec)
        dct.update(connector=spec.connector, binding=spec.binding, parameters=spec.parameters, results=spec.results,
                   result_variable=spec.result_variable)
        return dct


class DecisionTask(BusinessRuleTask):
    """A Camunda business rule task that stores its result the way ``camunda:mapDecisionResult`` says."""

    def __init__(self, wf_spec, name, dmnEngine, result_variable=None, map_decision_result="resultList", **kwargs):
        super().__init__(wf_spec, name, dmnEngine, **kwargs)
        self.result_variable = result_variable
        self.map_decision_result = map_decision_result

    def _run_hook(self, my_task):
        if not self.result_variable:
            return super()._run_hook(my_task)
        try:
            rows = self._rows(my_task)
        except Exception as exc:  # a cell failed: name the task like the library does
            error = WorkflowTaskException(str(exc), task=my_task, exception=exc)
            error.add_note(f"Business Rule Task '{my_task.task_spec.bpmn_name}'.")
            raise error from exc
        mapping = self.map_decision_result
        if mapping in ("singleEntry", "singleResult") and len(rows) > 1:
            raise WorkflowTaskException(f"decision returned {len(rows)} results, {mapping} expects at most one",
                                        task=my_task)
        if mapping == "singleEntry":
            value = next(iter(rows[0].values()), None) if rows else None
        elif mapping == "singleResult":
            value = rows[0] if rows else None
        elif mapping == "collectEntries":
            value = [next(iter(r.values()), None) for r in rows]
        else:
            value = rows
        my_task.data = DeepMerge.merge(my_task.data, {self.result_variable: value})
        return True

    def _rows(self, my_task):
        """Each matched rule's outputs as a dict, in rule order."""
        engine = self.dmnEngine
        matched = engine.decide(my_task)
        if engine.decision_table.hit_policy != "COLLECT":
            matched = matched[:1]
        return [dict(rule.output_as_dict(my_task)) for rule in matched]


class DecisionTaskConverter(BaseBusinessRuleTaskConverter):
    def to_dict(self, spec):
        dct = super().to_dict(spec)
        dct.update(result_variable=spec.result_variable, map_decision_result=spec.map_decision_result)
        return dct


CONVERTERS = {ConnectorTask: ConnectorTaskConverter, DecisionTask: DecisionTaskConverter}


def _task_kwargs(parser):
    """ConnectorTask arguments from a task node (None when the node has no connector binding)."""
    binding = binding_of(parser.node)
    if binding is None or binding[0] not in ("class", "delegateExpression", "external"):
        return None
    services = getattr(parser.process_parser.parser, "services", {})
    connector = resolve(*binding, services) or (candidates(*binding) or [binding[1]])[0]
    ins = _io_parameters(parser.node, "inputParameter")
    outs = _io_parameters(parser.node, "outputParameter")
    return {
        "connector": connector, "binding": f"{binding[0]} {binding[1]}",
        "parameters": [[p.get("name"), _parameter_code(p)] for p in ins] if ins else None,
        "results": [[p.get("name"), _parameter_code(p)] for p in outs] if outs else None,
        "result_variable": parser.node.get(_c("resultVariable")),
    }


class ConnectorTaskParser(CamundaTaskParser):
    def create_task(self):
        kwargs = _task_kwargs(self)
        if kwargs is None:
            return super().create_task()
        return ConnectorTask(self.spec, self.bpmn_id, **kwargs, **self.bpmn_attributes)


class ConnectorSendTaskParser(CamundaEventDefinitionParser, SendTaskParser):
    """A send task: a connector call, else a message (Camunda's message definition) or a letter."""

    def create_task(self):
        kwargs = _task_kwargs(self)
        if kwargs is None:
            return super().create_task()  # a message, or a letter (contract A)
        return ConnectorTask(self.spec, self.bpmn_id, **kwargs, **self.bpmn_attributes)


class CamundaReceiveTaskParser(CamundaEventDefinitionParser, ReceiveTaskParser):
    """A receive task with Camunda's message definition (the library's plain one cannot be stored)."""

    def create_task(self):
        return ReceiveTaskParser.create_task(self)


class DecisionTaskParser(BusinessRuleTaskParser):
    def create_task(self):
        decision_ref = self.get_decision_ref(self.node)
        return DecisionTask(self.spec, self.bpmn_id,
                            dmnEngine=self.process_parser.parser.get_engine(decision_ref, self.node),
                            result_variable=self.node.get(_c("resultVariable")) or None,
                            map_decision_result=self.node.get(_c("mapDecisionResult")) or "resultList",
                            **self.bpmn_attributes)


def _tag(name):
    return f"{{{BPMN_NS}}}{name}"


class Parser(CamundaParser):
    """CamundaParser with connector-bound service/send tasks and Camunda's decision results.

    ``services`` is the registry the connector names are resolved against (``rt.services``)."""

    OVERRIDE_PARSER_CLASSES = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        _tag("serviceTask"): (ConnectorTaskParser, ServiceTask),
        _tag("sendTask"): (ConnectorSendTaskParser, CamundaParser.PARSER_CLASSES[_tag("sendTask")][1]),
        _tag("businessRuleTask"): (DecisionTaskParser, DecisionTask),
        _tag("receiveTask"): (CamundaReceiveTaskParser, CamundaParser.PARSER_CLASSES[_tag("receiveTask")][1]),
    }

    def __init__(self, services=None, **kwargs):
        super().__init__(**kwargs)
        self.services = services or {}
