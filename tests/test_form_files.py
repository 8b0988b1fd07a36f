"""Forms referenced but not uploaded are refused naming the element and the file; Camunda Forms (.form) become
the task's JSON Schema form; XSD errors carry a column in the API's 422 and on the page."""

import io
import json
import re

import pytest
from bpmn_snippets import HEAD, TAIL, with_step
from test_upload_page import designer, upload
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD

from engine.cases import complete_task, list_tasks, start_case
from engine.deploy import deploy
from engine.errors import DeployError, FormInvalid
from engine.form_files import form_js_schema
from engine.models import Bundle
from engine.users import add_user, create_token

CAMUNDA_HEAD = HEAD.replace('xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"',
                            'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"')


def camunda_user_task(attrs, pid="formular"):
    return (CAMUNDA_HEAD.format(pid=pid) + f'    <bpmn:userTask id="Step" name="Antrag prüfen" {attrs}>'
            "<bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing></bpmn:userTask>\n" + TAIL).encode()


def spiff_user_task(prop, value):
    return with_step(f"""    <bpmn:userTask id="Step" name="Antrag prüfen">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="{prop}" value="{value}" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>""", "formular")


FORM = {"id": "pruefung", "type": "default", "components": [
    {"key": "betrag", "label": "Betrag", "type": "number", "validate": {"required": True, "min": 0}},
    {"key": "az", "label": "Aktenzeichen", "type": "textfield", "validate": {"pattern": "^C-[0-9]+$"}},
    {"key": "art", "label": "Art", "type": "select",
     "values": [{"label": "Hund", "value": "hund"}, {"label": "Katze", "value": "katze"}]},
    {"key": "ok", "label": "In Ordnung", "type": "checkbox"},
    {"type": "group", "components": [{"key": "notiz", "type": "textarea", "label": "Notiz"}]},
    {"type": "button", "key": "submit", "label": "Senden"},
]}


def refused(rt, files):
    with pytest.raises(DeployError) as info:
        deploy(rt, [Bundle(files)])
    return info.value.problems


@pytest.mark.parametrize("attrs, missing", [
    ('camunda:formKey="camunda-forms:deployment:forms/pruefung.form"', "form file 'forms/pruefung.form'"),
    ('camunda:formKey="camunda-forms:app:pruefung.form"', "form file 'pruefung.form'"),
    ('camunda:formKey="embedded:deployment:forms/pruefung.html"', "form file 'forms/pruefung.html'"),
    ('camunda:formRef="pruefung" camunda:formRefBinding="latest"', "no .form file with the id 'pruefung'"),
])
def test_a_camunda_form_that_is_not_uploaded_is_refused(rt, attrs, missing):
    [p] = refused(rt, {"f.bpmn": camunda_user_task(attrs)})
    assert (p.file, p.line, p.element) == ("f.bpmn", 7, "Step")
    assert f"of 'Step' ('Antrag prüfen'): {missing} is not in the upload" in p.message


@pytest.mark.parametrize("prop", ["formJsonSchemaFilename", "formUiSchemaFilename"])
def test_a_spiff_form_file_that_is_not_uploaded_is_refused(rt, prop):
    [p] = refused(rt, {"f.bpmn": spiff_user_task(prop, "pruefen.schema.json")})
    assert p.file == "f.bpmn" and p.element == "Step"
    assert f"{prop} of 'Step' ('Antrag prüfen'): form file 'pruefen.schema.json' is not in the upload" in p.message


@pytest.mark.parametrize("key", ["embedded:app:forms/pruefen.html", "app:forms/pruefen.html"])
def test_an_embedded_app_form_without_form_data_is_refused(rt, key):
    [p] = refused(rt, {"f.bpmn": camunda_user_task(f'camunda:formKey="{key}"')})
    assert (p.file, p.line, p.element) == ("f.bpmn", 7, "Step")
    assert p.message == (f"camunda:formKey {key!r} of 'Step' ('Antrag prüfen'): an embedded HTML form of the Camunda "
                         "web app cannot be shown; describe the form with camunda:formData or upload a form file")


def test_an_embedded_app_form_with_form_data_deploys_with_the_form_data_form(rt):
    doc = camunda_user_task('camunda:formKey="embedded:app:forms/pruefen.html"').replace(
        b"<bpmn:incoming>F1", b'<bpmn:extensionElements><camunda:formData><camunda:formField id="betrag" '
                              b'label="Betrag" type="long" /></camunda:formData></bpmn:extensionElements>'
                              b"<bpmn:incoming>F1", 1)
    deploy(rt, [Bundle({"f.bpmn": doc})])
    [case] = start_case(rt, "formular", "marburg")
    assert [t["element_id"] for t in list_tasks(rt, case_id=case["id"])] == ["Step"]


def test_form_js_becomes_a_json_schema():
    schema = form_js_schema(FORM)
    assert schema["required"] == ["betrag"]
    assert schema["properties"]["betrag"] == {"type": "number", "title": "Betrag", "minimum": 0}
    assert schema["properties"]["az"]["pattern"] == "^C-[0-9]+$"
    assert schema["properties"]["art"]["enum"] == ["hund", "katze"]
    assert schema["properties"]["ok"]["type"] == "boolean" and schema["properties"]["notiz"]["type"] == "string"
    assert "submit" not in schema["properties"]


def test_a_pattern_that_could_backtrack_without_end_is_dropped():
    form = {"components": [{"key": "x", "type": "textfield", "validate": {"pattern": "^(a+)+$"}}]}
    assert "pattern" not in form_js_schema(form)["properties"]["x"]


@pytest.mark.parametrize("attrs, files", [
    ('camunda:formKey="camunda-forms:deployment:forms/pruefung.form"', {"forms/pruefung.form": FORM}),
    ('camunda:formRef="pruefung"', {"anders.form": FORM}),
])
def test_an_uploaded_camunda_form_checks_the_task_data(rt, attrs, files):
    bundle = {"f.bpmn": camunda_user_task(attrs), **{k: json.dumps(v).encode() for k, v in files.items()}}
    deploy(rt, [Bundle(bundle)])
    [case] = start_case(rt, "formular", "marburg")
    [task] = list_tasks(rt, case_id=case["id"])
    with pytest.raises(FormInvalid):
        complete_task(rt, task["id"], "anna", {"az": "C-1"})  # betrag is required
    with pytest.raises(FormInvalid):
        complete_task(rt, task["id"], "anna", {"betrag": 5, "art": "maus"})
    complete_task(rt, task["id"], "anna", {"betrag": 5, "az": "C-17", "art": "hund"})


def test_a_form_file_that_is_not_json_is_refused(rt):
    problems = refused(rt, {"f.bpmn": camunda_user_task('camunda:formKey="camunda-forms:app:kaputt.form"'),
                            "kaputt.form": b"<html>"})
    assert any("kaputt.form is not a JSON form" in p.message and p.element == "Step" for p in problems)


BAD_XSD = with_step('    <bpmn:userTask id="Step"><bpmn:incoming>F1</bpmn:incoming>'
                    '<bpmn:outgoing>F2</bpmn:outgoing><bpmn:notAnElement/></bpmn:userTask>')
COLUMN = BAD_XSD.decode().splitlines()[6].index("<bpmn:notAnElement") + 1


def test_xsd_errors_have_a_column_in_the_api_report(client, web_rt):
    add_user(web_rt, "dora", "marburg", "designer", PASSWORD, [])
    resp = client.post("/api/v1/process-models", data={"files": [(io.BytesIO(BAD_XSD), "x.bpmn")]},
                       headers={"Authorization": f"Bearer {create_token(web_rt, 'dora')}"},
                       content_type="multipart/form-data")
    assert resp.status_code == 422
    [error] = resp.get_json()["errors"]
    assert {k: error[k] for k in ("file", "line", "column", "element")} == {
        "file": "x.bpmn", "line": 7, "column": COLUMN, "element": "Step"}
    assert "bpmn:notAnElement" in error["message"]


def test_xsd_errors_show_the_column_on_the_page(client, web_rt):
    designer(client, web_rt)
    html = upload(client, [("x.bpmn", BAD_XSD)]).get_data(as_text=True)
    assert re.search(rf"<td>x.bpmn</td><td>7</td><td>{COLUMN}</td>\s*<td>Step</td>", html)
    assert "<th scope=\"col\">Spalte</th>" in html
