"""FEEL cells of Camunda decision tables: translated at deploy into restricted Python, the rest refused with
file, line, rule and cell; decisions run from business rule tasks (camunda:decisionRef) end to end."""

import pytest
from conftest import SHARED

from engine.cases import get_case, start_case
from engine.deploy import deploy
from engine.errors import DeployError
from engine.feel import FeelUnsupported, translate_input, translate_output
from engine.models import Bundle
from engine.restricted import check_code

INVOICE_DMN = (SHARED / "corpus/camunda/camunda-bpm-platform/examples/invoice/src/main/resources"
               / "invoiceBusinessDecisions.dmn")


@pytest.mark.parametrize("cell, python", [
    ("-", None), ("", None), ("  ", None),
    ("< 250", "? < 250"), (">= 250", "? >= 250"), ("<=1.5", "? <= 1.5"), ("> -3", "? > -3"),
    ("[250..1000]", "? >= 250 and ? <= 1000"), ("]1..5[", "? > 1 and ? < 5"), ("(1..5)", "? > 1 and ? < 5"),
    ("[1..5)", "? >= 1 and ? < 5"),
    ('"Misc"', "? == 'Misc'"), ("42", "? == 42"), ("true", "? == True"), ("null", "? == None"),
    ('"budget", "exceptional"', "(? == 'budget') or (? == 'exceptional')"),
    ("1,2,3", "(? == 1) or (? == 2) or (? == 3)"),
    ('not("a","b")', "not ((? == 'a') or (? == 'b'))"), ("not(< 5)", "not (? < 5)"),
    ("limit", "? == limit"), ("< limit", "? < limit"),
])
def test_unary_tests_translate(cell, python):
    assert translate_input(cell) == python
    if python:
        check_code(python.replace("?", "dmninputexpr"), "eval")


@pytest.mark.parametrize("cell, python", [
    ('"accounting"', "'accounting'"), ("12.5", "12.5"), ("false", "False"), ("", ""), ("betrag", "betrag"),
])
def test_output_entries_translate(cell, python):
    assert translate_output(cell) == python


@pytest.mark.parametrize("cell", [
    "date(\"2025-01-01\")", "amount * 2", "x.y", "__import__('os')", "? > 5", "\"it's\"", "[1..]", "< 1 2",
    "not()", "1,,2", "!= 3", "if", "dmninputexpr", "\"a\" \"b\"", "a.__class__", "'single'",
])
def test_everything_else_is_refused(cell):
    with pytest.raises(FeelUnsupported):
        translate_input(cell)


@pytest.mark.parametrize("cell", ['"a","b"', "< 5", "[1..2]", "x.y", "len(a)"])
def test_output_cells_hold_one_value(cell):
    with pytest.raises(FeelUnsupported):
        translate_output(cell)


BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="Defs" targetNamespace="http://ozgflow.de/tests">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:businessRuleTask id="Decide" name="Entscheiden" camunda:decisionRef="{ref}" {attrs}>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:userTask id="Pruefen" name="Prüfen"><bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Decide" />
    <bpmn:sequenceFlow id="F2" sourceRef="Decide" targetRef="Pruefen" />
    <bpmn:sequenceFlow id="F3" sourceRef="Pruefen" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""

DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" xmlns:camunda="http://camunda.org/schema/1.0/dmn"
             id="gebuehren" name="Gebühren" namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="gebuehr" name="Gebühr">
    <decisionTable id="Table" hitPolicy="{policy}">
      <input id="In1" label="Fläche"><inputExpression id="E1" typeRef="double"><text>flaeche</text></inputExpression>
      </input>
      <input id="In2" label="Art"><inputExpression id="E2" typeRef="string"><text>art</text></inputExpression>
      </input>
      <output id="Out1" label="Gebühr" name="gebuehr" typeRef="double" />
      <output id="Out2" label="Stufe" name="stufe" typeRef="string" />
{rules}
    </decisionTable>
  </decision>
</definitions>
"""


def rule(rid, area, kind, fee, level):
    return (f'      <rule id="{rid}"><inputEntry id="{rid}_a"><text>{area}</text></inputEntry>'
            f'<inputEntry id="{rid}_b"><text>{kind}</text></inputEntry>'
            f'<outputEntry id="{rid}_c"><text>{fee}</text></outputEntry>'
            f'<outputEntry id="{rid}_d"><text>{level}</text></outputEntry></rule>')


RULES = "\n".join([
    rule("R1", "&lt; 100", '"Wohnen","Garage"', "50", '"klein"'),
    rule("R2", "[100..1000]", "-", "250.5", '"mittel"'),
    rule("R3", "&gt; 1000", 'not("Garage")', "900", '"gross"'),
    rule("R4", "-", '"Garage"', "10", '"sonder"'),
])


def bundle(policy="UNIQUE", rules=RULES, attrs="", pid="gebuehr_berechnen", ref="gebuehr"):
    return Bundle({"p.bpmn": BPMN.format(pid=pid, ref=ref, attrs=attrs).encode(),
                   "gebuehr.dmn": DMN.format(policy=policy, rules=rules).encode()})


def decide(rt, data, **kwargs):
    deploy(rt, [bundle(**kwargs)])
    [case] = start_case(rt, kwargs.get("pid", "gebuehr_berechnen"), "marburg", data)
    assert case["state"] != "error", case.get("error")
    return get_case(rt, case["id"])["data"]


@pytest.mark.parametrize("data, fee, level", [
    ({"flaeche": 50, "art": "Wohnen"}, 50, "klein"),
    ({"flaeche": 100, "art": "Gewerbe"}, 250.5, "mittel"),
    ({"flaeche": 1000, "art": "Garage"}, 250.5, "mittel"),
    ({"flaeche": 5000, "art": "Wohnen"}, 900, "gross"),
    ({"flaeche": 5000, "art": "Garage"}, 10, "sonder"),
])
def test_unique_decision_merges_the_outputs(rt, data, fee, level):
    got = decide(rt, data)
    assert (got["gebuehr"], got["stufe"]) == (fee, level)


def test_first_hit_policy_takes_the_first_matching_rule(rt):
    got = decide(rt, {"flaeche": 50, "art": "Garage"}, policy="FIRST")
    assert (got["gebuehr"], got["stufe"]) == (50, "klein")  # R4 matches too, later


@pytest.mark.parametrize("mapping, expected", [
    ("collectEntries", [50, 10]),
    ("resultList", [{"gebuehr": 50, "stufe": "klein"}, {"gebuehr": 10, "stufe": "sonder"}]),
])
def test_collect_with_result_variable_maps_like_camunda(rt, mapping, expected):
    got = decide(rt, {"flaeche": 50, "art": "Garage"}, policy="COLLECT",
                 attrs=f'camunda:resultVariable="ergebnis" camunda:mapDecisionResult="{mapping}"')
    assert got["ergebnis"] == expected and "gebuehr" not in got


def test_single_result_and_single_entry(rt):
    got = decide(rt, {"flaeche": 5000, "art": "Wohnen"},
                 attrs='camunda:resultVariable="ergebnis" camunda:mapDecisionResult="singleResult"')
    assert got["ergebnis"] == {"gebuehr": 900, "stufe": "gross"}
    got = decide(rt, {"flaeche": 1, "art": "Keine"}, pid="nichts",
                 attrs='camunda:resultVariable="ergebnis" camunda:mapDecisionResult="singleEntry"')
    assert got["ergebnis"] is None  # no rule matched


def refused(rt, b):
    with pytest.raises(DeployError) as info:
        deploy(rt, [b])
    return info.value.problems


def test_a_cell_outside_the_subset_is_refused_with_file_line_rule_and_cell(rt):
    rules = RULES.replace('"Wohnen","Garage"', 'date("2025-01-01")')
    [p] = refused(rt, bundle(rules=rules))
    dmn = DMN.format(policy="UNIQUE", rules=rules).splitlines()
    assert p.file == "gebuehr.dmn" and 'date("2025-01-01")' in dmn[p.line - 1] and p.element == "R1_b"
    assert "decision 'gebuehr', rule 1 (R1), input 2: FEEL 'date(\"2025-01-01\")' is outside the subset" in p.message
    assert "ranges [a..b]" in p.message  # says what is supported


@pytest.mark.parametrize("cell", ["__import__('os').system('id')", "x.__class__", "open(\"/etc/passwd\")"])
def test_code_in_a_cell_does_not_get_through(rt, cell):
    [p] = refused(rt, bundle(rules=RULES.replace('"klein"', cell.replace('"', "&quot;"))))
    assert p.file == "gebuehr.dmn" and "output 2" in p.message


def test_a_variable_name_that_the_restricted_checker_forbids_is_refused(rt):
    [p] = refused(rt, bundle(rules=RULES.replace('"klein"', "open")))
    assert "'open' is not in the list of allowed names" in p.message


@pytest.mark.parametrize("policy", ["ANY", "PRIORITY", "RULE ORDER", "OUTPUT ORDER"])
def test_other_hit_policies_are_refused(rt, policy):
    [p] = refused(rt, bundle(policy=policy))
    assert f"hit policy {policy} is not supported" in p.message and p.element == "Table"


def test_collect_with_an_aggregation_is_refused(rt):
    b = bundle(policy="COLLECT")
    b.files["gebuehr.dmn"] = b.files["gebuehr.dmn"].replace(b'hitPolicy="COLLECT"',
                                                            b'hitPolicy="COLLECT" aggregation="SUM"')
    assert "COLLECT SUM is not supported" in refused(rt, b)[0].message


def test_a_missing_decision_is_refused_naming_the_task(rt):
    b = bundle(ref="gibtsnicht")
    problems = refused(rt, b)
    assert any(p.element == "Decide" and "gibtsnicht" in p.message for p in problems)


def test_the_camunda_invoice_decisions_split_and_run(rt):
    """Camunda's invoice example DMN holds two decisions; the first (FEEL, ranges, lists) runs on its own."""
    b = Bundle({"p.bpmn": BPMN.format(pid="klassifizieren", ref="invoiceClassification", attrs="").encode(),
                "invoiceBusinessDecisions.dmn": INVOICE_DMN.read_bytes()})
    deploy(rt, [b])
    for amount, category, expected in ((100, "Misc", "day-to-day expense"), (500, "Misc", "budget"),
                                       (5000, "Misc", "exceptional"), (9999, "Travel Expenses", "day-to-day expense"),
                                       (1, "Software License Costs", "budget")):
        [case] = start_case(rt, "klassifizieren", "marburg", {"amount": amount, "invoiceCategory": category})
        assert get_case(rt, case["id"])["data"]["invoiceClassification"] == expected


def test_a_decision_that_requires_another_is_refused_when_used(rt):
    b = Bundle({"p.bpmn": BPMN.format(pid="zuweisen", ref="invoice-assign-approver", attrs="").encode(),
                "invoiceBusinessDecisions.dmn": INVOICE_DMN.read_bytes()})
    [p] = refused(rt, b)
    assert p.file == "invoiceBusinessDecisions.dmn" and p.element == "invoice-assign-approver"
    assert "requires decision 'invoiceClassification'" in p.message


def test_code_in_a_cell_the_library_would_read_by_a_suffix_does_not_get_through(rt):
    """SpiffWorkflow finds cells by tag suffix (…text below …inputEntry): the check must see the same cells."""
    sneaky = RULES.replace('<outputEntry id="R1_c"><text>50</text>',
                           '<outputEntry id="R1_c"><x:footext xmlns:x="urn:x">__import__(&quot;os&quot;)</x:footext>')
    [p] = refused(rt, bundle(rules=sneaky))
    assert p.element == "R1_c" and "output 1" in p.message


def test_a_dmn_file_of_an_unknown_version_is_refused(rt):
    b = bundle()
    b.files["gebuehr.dmn"] = b.files["gebuehr.dmn"].replace(b"https://www.omg.org/spec/DMN/20191111/MODEL/",
                                                            b"urn:not-dmn")
    [p] = refused(rt, b)
    assert p.file == "gebuehr.dmn" and "not a DMN document of a version we read" in p.message
