"""Small BPMN documents for tests, built from a few lines of process body."""

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Defs" targetNamespace="http://ozgflow.de/tests">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
"""
TAIL = """    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Step" />
    <bpmn:sequenceFlow id="F2" sourceRef="Step" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def with_step(step_xml, pid="snippet"):
    """A process start -> Step -> end, where ``step_xml`` is the Step element (id="Step")."""
    return (HEAD.format(pid=pid) + step_xml + "\n" + TAIL).encode()


def script_process(script, pid="snippet"):
    return with_step(f"""    <bpmn:scriptTask id="Step" name="Run">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>""", pid)


def user_task_process(pid="snippet", name="Do it"):
    return with_step(f"""    <bpmn:userTask id="Step" name="{name}">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>""", pid)
