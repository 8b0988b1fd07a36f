"""Linear BPMN processes for version tests: start -> steps -> end, with a diagram (BPMNDI) for bpmn-js.

A step is (tag, id, name, inner XML, extra attributes). ``boundary`` adds a boundary event to a step."""

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
                  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
                  xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Defs_{pid}" targetNamespace="http://ozgflow.de/tests">
"""


def user(element_id, name, groups=None):
    inner = ""
    if groups:
        inner = (f'<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="candidateGroups" '
                 f'value="{groups}" /></spiffworkflow:properties></bpmn:extensionElements>')
    return ("userTask", element_id, name, inner, "")


def script(element_id, name, code):
    return ("scriptTask", element_id, name, f"<bpmn:script>{code}</bpmn:script>", "")


def timer(element_id, name, duration):
    return ("intermediateCatchEvent", element_id, name,
            f'<bpmn:timerEventDefinition id="{element_id}_def"><bpmn:timeDuration>"{duration}"</bpmn:timeDuration>'
            "</bpmn:timerEventDefinition>", "")


def message(element_id, name, message_name):
    return ("intermediateCatchEvent", element_id, name,
            f'<bpmn:messageEventDefinition id="{element_id}_def" messageRef="Msg_{message_name}" />', "")


def chain(pid, steps, name=None, messages=()):
    """BPMN bytes of process ``pid``: StartEvent_1 -> steps... -> EndEvent_1, with shapes left to right."""
    nodes = [("startEvent", "StartEvent_1", None, "", "")] + list(steps) + [("endEvent", "EndEvent_1", None, "", "")]
    body, shapes = [], []
    for i, (tag, eid, label, inner, extra) in enumerate(nodes):
        flows = ""
        if i > 0:
            flows += f"<bpmn:incoming>Flow_{i}</bpmn:incoming>"
        if i < len(nodes) - 1:
            flows += f"<bpmn:outgoing>Flow_{i + 1}</bpmn:outgoing>"
        name_attr = f' name="{label}"' if label else ""
        # extension elements come first, then incoming/outgoing, then the rest (the XSD's order)
        ext, rest = (inner, "") if inner.startswith("<bpmn:extensionElements") else ("", inner)
        body.append(f'    <bpmn:{tag} id="{eid}"{name_attr}{extra}>{ext}{flows}{rest}</bpmn:{tag}>')
        x = 100 + i * 160
        small = tag.endswith("Event")
        w, h = (36, 36) if small else (100, 80)
        y = 102 if small else 80
        shapes.append(f'      <bpmndi:BPMNShape id="{eid}_di" bpmnElement="{eid}"><dc:Bounds x="{x}" y="{y}" '
                      f'width="{w}" height="{h}" /></bpmndi:BPMNShape>')
    edges = []
    for i in range(1, len(nodes)):
        body.append(f'    <bpmn:sequenceFlow id="Flow_{i}" sourceRef="{nodes[i - 1][1]}" targetRef="{nodes[i][1]}" />')
        x1 = 100 + (i - 1) * 160 + (36 if nodes[i - 1][0].endswith("Event") else 100)
        x2 = 100 + i * 160
        edges.append(f'      <bpmndi:BPMNEdge id="Flow_{i}_di" bpmnElement="Flow_{i}"><di:waypoint x="{x1}" y="120" />'
                     f'<di:waypoint x="{x2}" y="120" /></bpmndi:BPMNEdge>')
    xml = HEAD.format(pid=pid)
    xml += f'  <bpmn:process id="{pid}" name="{name or pid}" isExecutable="true">\n' + "\n".join(body)
    xml += "\n  </bpmn:process>\n"
    xml += "".join(f'  <bpmn:message id="Msg_{m}" name="{m}" />\n' for m in messages)
    xml += (f'  <bpmndi:BPMNDiagram id="Diagram_{pid}"><bpmndi:BPMNPlane id="Plane_{pid}" bpmnElement="{pid}">\n'
            + "\n".join(shapes + edges) + "\n  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n</bpmn:definitions>\n")
    return xml.encode()
