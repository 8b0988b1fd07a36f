"""Form files a model refers to: they must be in the upload, and Camunda Forms become our JSON Schema forms.

A reference to a form file ozgflow uses is checked at deploy; a missing file refuses the upload naming the
element (id and name) and the file:

- SpiffWorkflow / bpmn.io: the properties ``formJsonSchemaFilename`` and ``formUiSchemaFilename``;
- Camunda Modeler: ``camunda:formRef="<form id>"`` (a ``.form`` file whose ``id`` is that), and
  ``camunda:formKey`` values ``camunda-forms:…:<path>.form`` or ``…deployment:<path>`` (a file of the
  deployment). A Camunda Form (form-js JSON) is turned into a JSON Schema (``form_js_schema``).

``embedded:app:…`` and ``app:…`` form keys name forms of a Java web application (HTML, JSF). They are not
part of a model upload and are not shown: such a task gets its ``camunda:formData`` form or the generic one.
"""

import json
import re

from .errors import Problem

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FORM_TYPES = {"textfield": "string", "textarea": "string", "number": "number", "checkbox": "boolean",
              "select": "string", "radio": "string", "datetime": "string", "checklist": "array",
              "taglist": "array"}


def bundle_file(files, name):
    """The bytes of ``name`` in the upload: the exact path, else a file of that path's base name."""
    name = name.strip().lstrip("/")
    if name in files:
        return files[name]
    base = name.rsplit("/", 1)[-1]
    return next((data for path, data in files.items() if path.rsplit("/", 1)[-1] == base), None)


def form_reference(node):
    """(attribute shown, kind, value) of a Camunda form reference we use, or None.

    kind: "file" (a path in the upload) or "form_id" (a Camunda Form's id)."""
    ref = node.get(f"{{{CAMUNDA_NS}}}formRef")
    if ref:
        return "camunda:formRef", "form_id", ref.strip()
    key = (node.get(f"{{{CAMUNDA_NS}}}formKey") or "").strip()
    if key.startswith("camunda-forms:"):
        return "camunda:formKey", "file", key.split(":")[-1]
    if key.startswith(("deployment:", "embedded:deployment:")):
        return "camunda:formKey", "file", key.split(":")[-1]
    return None


def _app_form_key(node):
    """The formKey of an HTML form inside the Camunda web app (``embedded:app:…``, ``app:…``), or None: we cannot
    show it; a task with ``camunda:formData`` gets that form instead."""
    key = (node.get(f"{{{CAMUNDA_NS}}}formKey") or "").strip()
    return key if key.startswith(("embedded:app:", "app:")) else None


def _label(node):
    name = " ".join((node.get("name") or "").split())
    return f"{node.get('id')!r}" + (f" ({name!r})" if name else "")


def check_forms(path, tree, files):
    """Problems for forms that are referenced but not in the upload (every element of the file)."""
    problems = []
    for node in tree.getroot().iter():
        if not isinstance(node.tag, str):
            continue
        found = form_reference(node)
        if found is not None:
            attr, kind, value = found
            if not value:
                problems.append(Problem(path, node.sourceline, node.get("id"),
                                        f"{attr} of {_label(node)} names no form"))
            elif load_camunda_form(files, kind, value) is None:
                what = f"no .form file with the id {value!r}" if kind == "form_id" else f"form file {value!r}"
                problems.append(Problem(path, node.sourceline, node.get("id"),
                                        f"{attr} of {_label(node)}: {what} is not in the upload"))
        app_form = _app_form_key(node)
        if app_form and node.find(f".//{{{CAMUNDA_NS}}}formField") is None:
            problems.append(Problem(path, node.sourceline, node.get("id"),
                                    f"camunda:formKey {app_form!r} of {_label(node)}: an embedded HTML form of the "
                                    "Camunda web app cannot be shown; describe the form with camunda:formData or "
                                    "upload a form file"))
        if node.tag == f"{{{SPIFF_NS}}}property" and node.get("name") in ("formJsonSchemaFilename",
                                                                          "formUiSchemaFilename"):
            value = (node.get("value") or "").strip()
            owner = _owner(node)
            if value and bundle_file(files, value) is None:
                problems.append(Problem(path, node.sourceline, owner.get("id") if owner is not None else None,
                                        f"{node.get('name')} of {_label(owner) if owner is not None else 'a task'}: "
                                        f"form file {value!r} is not in the upload"))
    return problems


def _owner(node):
    while node is not None and not (node.get("id") and node.tag.startswith(f"{{{BPMN_NS}}}")):
        node = node.getparent()
    return node


def load_camunda_form(files, kind, value):
    """The parsed Camunda Form (dict) a reference points to, or None when it is not in the upload.

    A file that is there but not JSON comes back as ``{"invalid": message}``."""
    if kind == "form_id":
        for path, data in files.items():
            if path.lower().endswith(".form"):
                form = _json(data)
                if isinstance(form, dict) and form.get("id") == value:
                    return form
        return None
    data = bundle_file(files, value)
    if data is None:
        return None
    if not value.lower().endswith((".form", ".json")):
        return {"not_a_form": value}  # an embedded HTML form of the deployment: there, but not shown
    form = _json(data)
    return form if isinstance(form, dict) else {"invalid": f"{value} is not a JSON form"}


def _json(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


# A pattern from an uploaded form runs against citizens' and caseworkers' input: refuse what could backtrack
# without end (a quantified group that is itself quantified) and overly long patterns; the field keeps the rest.
RISKY_PATTERN = re.compile(r"\([^)]*[+*}][^)]*\)\s*[+*{]")
MAX_PATTERN = 200


def camunda_task_form(node, files):
    """(JSON Schema or None, problem text or None) of the Camunda Form a task refers to."""
    found = form_reference(node)
    if found is None:
        return None, None
    form = load_camunda_form(files, found[1], found[2])
    if not form or "not_a_form" in form:
        return None, None
    if "invalid" in form:
        return None, form["invalid"]
    return form_js_schema(form), None


def form_js_schema(form):
    """A JSON Schema for a Camunda Form (form-js): input components by key; required, pattern, min/max."""
    schema = {"type": "object", "properties": {}, "required": []}
    _add_components(schema, form.get("components") or [])
    return schema


def _add_components(schema, components):
    for c in components:
        if not isinstance(c, dict):
            continue
        if isinstance(c.get("components"), list):  # groups
            _add_components(schema, c["components"])
        key, kind = c.get("key"), c.get("type")
        if not key or kind not in FORM_TYPES:
            continue
        prop = {"type": FORM_TYPES[kind], "title": c.get("label") or key}
        if c.get("description"):
            prop["description"] = c["description"]
        if kind == "datetime":
            prop["format"] = "date"
        values = [v.get("value") for v in c.get("values") or [] if isinstance(v, dict)]
        if values and kind in ("select", "radio"):
            prop["enum"] = values
            prop["enumNames"] = [v.get("label") or v.get("value") for v in c["values"] if isinstance(v, dict)]
        elif values:
            prop["items"] = {"type": "string", "enum": values}
        validate = c.get("validate") or {}
        for ours, theirs in (("pattern", "pattern"), ("minLength", "minLength"), ("maxLength", "maxLength"),
                             ("minimum", "min"), ("maximum", "max")):
            if validate.get(theirs) is not None:
                prop[ours] = validate[theirs]
        if not isinstance(prop.get("pattern", ""), str) or len(prop.get("pattern", "")) > MAX_PATTERN \
                or RISKY_PATTERN.search(prop.get("pattern", "")):
            prop.pop("pattern")
        if c.get("defaultValue") is not None:
            prop["default"] = c["defaultValue"]
        if validate.get("required"):
            schema["required"].append(key)
        schema["properties"][key] = prop
