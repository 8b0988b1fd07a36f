"""The executable Camunda examples of ../shared/corpus/camunda run end to end: deployed as uploaded (with the
form files their project ships), with fake connectors registered for their Java delegates and external tasks
(tests/corpus_connectors.py), every step through the database (engine.examples.run_example)."""

import pytest
from conftest import SHARED
from corpus_connectors import CALLS, fake_services

from engine.deploy import deploy
from engine.examples import run_example
from engine.models import Bundle

CAMUNDA = SHARED / "corpus" / "camunda"
EXAMPLES = CAMUNDA / "camunda-bpm-examples"
PLATFORM = CAMUNDA / "camunda-bpm-platform"
OPERATON = CAMUNDA / "operaton"


def project_forms(path):
    """The Camunda Forms (.form) of the example project a model belongs to (its src/main/webapp)."""
    root = next((p for p in path.parents if p.name == "src"), path.parent)
    return {f.name: f.read_bytes() for f in sorted(root.rglob("*.form"))}


# model file -> (process id, example case as in processes/*/tests/*.json)
RUNS = {
    "message-start/message_start_process": (
        EXAMPLES / "startevent/message-start/src/main/resources/message_start_process.bpmn",
        "Message_Start_Process",
        {"tenant": "marburg", "steps": [{"message": "instantiationMessage", "data": {"grund": "Test"}},
                                        {"task": "UserTask_1", "user": "anna"}],
         "expect": {"state": "completed"}}),
    "message-start/instantiating_process": (
        EXAMPLES / "startevent/message-start/src/main/resources/instantiating_process.bpmn",
        "Instantiating_Process",
        {"tenant": "marburg", "data": {"auftrag": 1},
         "steps": [{"task": "UserTask_1", "user": "anna"}],
         "expect": {"state": "completed", "data": {"messageSent": True, "auftrag": 1}}}),
    "task-camunda-forms/invoiceApproval": (
        EXAMPLES / "usertask/task-camunda-forms/src/main/resources/invoiceApproval.bpmn",
        "camundaFormsQuickstart",
        {"tenant": "giessen",
         "steps": [{"task": "UserTask_1", "user": "anna", "data": {"creditor": "Firma", "amount": "12x"},
                    "expect_error": "amount"},
                   {"task": "UserTask_1", "user": "anna",
                    "data": {"creditor": "Firma", "amount": "120", "invoiceNumber": "C-123", "approved": "true"}}],
         "expect": {"state": "completed", "data": {"invoiceNumber": "C-123", "approved": "true"}}}),
    "platform/InterruptingEventSubProcessTest.testCancelTimer, made non-interrupting": (
        PLATFORM / "engine/src/test/resources/org/camunda/bpm/engine/test/bpmn/subprocess/"
                   "InterruptingEventSubProcessTest.testCancelTimer.bpmn",
        "process",
        {"tenant": "marburg",
         "steps": [{"message": "newMessage"},  # starts the event subprocess beside the main task
                   {"task": "taskAfterMessageStartEvent", "user": "anna"},
                   {"advance": "PT11M"},  # the boundary timer (PT10M, literal ISO text) fires
                   {"task": "taskAfterTimer", "user": "anna"}],
         "expect": {"state": "completed"}}),
    "operaton/invoice/reviewInvoice": (
        OPERATON / "examples/invoice/src/main/resources/reviewInvoice.bpmn",
        "ReviewInvoice",
        {"tenant": "marburg",
         "steps": [{"task": "assignReviewer", "user": "anna", "data": {"reviewer": "ben"}},
                   {"task": "reviewInvoice", "user": "ben", "data": {"clarified": False}}],
         "expect": {"state": "completed", "data": {"clarified": False}}}),
    "platform/spring-boot eventingWithIntermediateCatch": (
        PLATFORM / "spring-boot-starter/starter/src/test/resources/bpmn/eventingWithIntermediateCatch.bpmn",
        "eventingWithIntermediateCatch",
        {"tenant": "giessen", "now": "2050-11-14T10:00:00Z",
         "steps": [{"advance": "PT2H"}, {"task": "Activity_1lj2vhd", "user": "anna"}],
         "expect": {"state": "completed"}}),
    "miwg/Reference/C.9.1 (Camunda Modeler, external topics on send tasks)": (
        SHARED / "corpus/miwg/Reference/C.9.1.bpmn",
        "requestDocument_en",
        {"tenant": "fulda",
         "steps": [{"advance": "P1D"},  # the daily reminder (R6/P1D, non-interrupting) sends an e-mail
                   {"message": "MESSAGE_documentReceived", "data": {"document": "Nachweis"}}],
         "expect": {"state": "completed", "data": {"emailSent": True}}}),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_camunda_example_runs_end_to_end(rt, name):
    path, process_id, example = RUNS[name]
    rt.services.update(fake_services())
    CALLS.clear()
    model = path.read_bytes()
    if name.endswith("made non-interrupting"):  # interrupting event subprocesses are refused (SpiffWorkflow 3.2.0)
        model = model.replace(b'<bpmn2:startEvent id="messageStartEvent">',
                              b'<bpmn2:startEvent id="messageStartEvent" isInterrupting="false">')
    deploy(rt, [Bundle({path.name: model, **project_forms(path)}, source=name)], actor="corpus")
    case = run_example(rt, process_id, example, name=name)
    assert case["state"] == example["expect"].get("state", case["state"])
    if name.startswith("miwg/Reference/C.9.1"):  # the request and one reminder went through the topic's fake
        assert [c[0] for c in CALLS] == ["emailService", "emailService"]
    if name.endswith("instantiating_process"):  # the Java delegate's fake was called once, with the variables
        assert CALLS == [("org.camunda.bpm.example.event.message.InstantiateProcessByMessageDelegate",
                          {"auftrag": 1})]


def test_every_executable_camunda_example_is_covered():
    """Every file of the Camunda corpus that deploys (docs/conformance.md) has a run above."""
    from test_corpus import FILES, outcome

    deploying = {p.resolve() for p in FILES if p.is_relative_to(CAMUNDA) and outcome(p)[0] == "deploys"}
    runs = {path.resolve() for name, (path, _, _) in RUNS.items() if path.is_relative_to(CAMUNDA)
            and not name.endswith("made non-interrupting")}
    assert deploying == runs


# Examples whose forms are HTML pages inside the Camunda web app (embedded:app:…) and that have no
# camunda:formData to fall back on: refused, naming the element and the formKey.
EMBEDDED_APP_FORMS = {
    EXAMPLES / "usertask/task-form-embedded/src/main/resources/loanApproval.bpmn": "StartEvent_1",
    EXAMPLES / "usertask/task-form-embedded-bpmn-events/src/main/resources/invoicePayment.bpmn": "StartEvent_1",
    PLATFORM / "examples/invoice/src/main/resources/reviewInvoice.bpmn": "assignReviewer",
}


@pytest.mark.parametrize("path", sorted(EMBEDDED_APP_FORMS), ids=lambda p: p.stem)
def test_embedded_web_app_forms_without_form_data_are_refused(path):
    from test_corpus import outcome

    result, reason = outcome(path)
    assert result == "refused" and f"[{EMBEDDED_APP_FORMS[path]}]: camunda:formKey 'embedded:app:" in reason
    assert "an embedded HTML form of the Camunda web app cannot be shown; describe the form with " \
           "camunda:formData or upload a form file" in reason


def test_an_interrupting_event_subprocess_is_refused_naming_its_start_event():
    from test_corpus import outcome

    path, _, _ = RUNS["platform/InterruptingEventSubProcessTest.testCancelTimer, made non-interrupting"]
    result, reason = outcome(path)
    assert result == "refused" and reason.startswith("line 17 [messageStartEvent]: the start event of event "
                                                     "subprocess 'SubProcess_1' interrupts the process")
