"""Task forms from JSON Schema: the fields to render, the typed data from what was posted, and German
messages per field.

Inputs are named after the field ids (``jahressteuer``; nested objects as ``halter.name``). What the user
typed is kept as text (``values``) so a form with errors comes back exactly as it was; the typed data
(``data``) is what the engine validates and stores.
"""

import json
from dataclasses import dataclass, field
from functools import lru_cache

from jsonschema import Draft202012Validator, FormatChecker

TRUE, FALSE = ("true", "ja", "on", "1"), ("false", "nein", "off", "0")


@dataclass
class Field:
    name: str  # the input's name: the field id, dotted for nested objects
    label: str
    kind: str  # text, textarea, number, integer, boolean, select, date, group, unsupported
    required: bool = False
    description: str | None = None
    options: list = field(default_factory=list)  # (value, label) for selects
    attrs: dict = field(default_factory=dict)  # min, max, minlength, maxlength, step
    children: list = field(default_factory=list)  # for kind "group"


def fields_of(schema, prefix=""):
    """The fields of a JSON Schema object, in the order of its properties."""
    required = set(schema.get("required", []))
    out = []
    for fid, prop in (schema.get("properties") or {}).items():
        name = f"{prefix}{fid}"
        out.append(_field(name, fid, prop, fid in required))
    return out


def _field(name, fid, prop, required):
    kind, attrs, options = "text", {}, []
    ptype = prop.get("type")
    if isinstance(ptype, list):  # ["string", "null"] and the like: the first real type decides
        ptype = next((t for t in ptype if t != "null"), "string")
    if "enum" in prop:
        kind = "select"
        labels = prop.get("enumNames") or prop["enum"]
        options = [(_text(v), _text(lab)) for v, lab in zip(prop["enum"], labels, strict=False)]
    elif ptype == "boolean":
        kind = "boolean"
    elif ptype in ("number", "integer"):
        kind = ptype
        attrs = {k: prop[s] for k, s in (("min", "minimum"), ("max", "maximum")) if s in prop}
        attrs["step"] = "1" if ptype == "integer" else "any"
    elif ptype == "object":
        f = Field(name, prop.get("title") or fid, "group", required, prop.get("description"))
        f.children = fields_of(prop, prefix=f"{name}.")
        return f
    elif ptype == "array":
        kind = "unsupported"
    elif prop.get("format") == "date":
        kind = "date"
    elif prop.get("maxLength", 0) > 200 or prop.get("format") == "textarea":
        kind = "textarea"
    if ptype == "string" or kind in ("text", "textarea"):
        attrs.update({k: prop[s] for k, s in (("minlength", "minLength"), ("maxlength", "maxLength")) if s in prop})
    return Field(name, prop.get("title") or fid, kind, required, prop.get("description"), options, attrs)


def _text(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def labels_of(fields):
    """Field name -> label, nested fields included (for the error summary)."""
    labels = {}
    for f in fields:
        labels[f.name] = f.label
        labels.update(labels_of(f.children))
    return labels


def values_from(schema, form):
    """What was posted for the schema's fields, as text, exactly as typed."""
    return {f: form.get(f, "") for f in _names(fields_of(schema))}


def _names(fields):
    for f in fields:
        if f.kind == "group":
            yield from _names(f.children)
        elif f.kind != "unsupported":
            yield f.name


def values_of_data(schema, data):
    """Text values for the form from typed data (a task's current variables), for prefilling."""
    out = {}
    for name in _names(fields_of(schema)):
        value = data
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            out[name] = _text(value)
    return out


def typed_data(schema, values):
    """The data to validate and store: text converted to the schema's types; empty fields left out (so
    "required" catches them). Text that does not convert stays text and fails validation with a message."""
    data = {}
    for f in _all_fields(fields_of(schema)):
        raw = (values.get(f.name) or "").strip()
        if raw == "":
            continue
        prop = _prop_at(schema, f.name)
        target = data
        *parents, leaf = f.name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = _convert(prop, raw)
    return data


def _all_fields(fields):
    for f in fields:
        if f.kind == "group":
            yield from _all_fields(f.children)
        elif f.kind != "unsupported":
            yield f


def _prop_at(schema, name):
    prop = schema
    for part in name.split("."):
        prop = prop["properties"][part]
    return prop


def _convert(prop, raw):
    ptype = prop.get("type")
    if isinstance(ptype, list):
        ptype = next((t for t in ptype if t != "null"), "string")
    if "enum" in prop:
        for v in prop["enum"]:
            if _text(v) == raw:
                return v
        return raw
    if ptype == "boolean":
        low = raw.lower()
        return True if low in TRUE else False if low in FALSE else raw
    if ptype in ("number", "integer"):
        text = raw.replace(" ", "")
        if "," in text:  # German decimal comma: 1.234,50 → 1234.50
            text = text.replace(".", "").replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            return raw
        if ptype == "integer":
            return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else raw
        return int(number) if number.is_integer() and "." not in text else number
    return raw


@lru_cache(maxsize=256)
def _validator(schema_json):
    return Draft202012Validator(json.loads(schema_json), format_checker=FormatChecker())


def errors_of(schema, data):
    """German messages per field name for data that does not satisfy the schema ({} when it does)."""
    errors = {}
    for err in _validator(json.dumps(schema, sort_keys=True)).iter_errors(data):
        path = [str(p) for p in err.absolute_path]
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else ""
            errors.setdefault(".".join(path + [missing]), "Pflichtfeld: bitte ausfüllen.")
        else:
            errors.setdefault(".".join(path) or "_form", _german(err))
    return errors


def _german(err):
    v, arg = err.validator, err.validator_value
    messages = {
        "type": {"number": "Bitte eine Zahl eingeben.", "integer": "Bitte eine ganze Zahl eingeben.",
                 "boolean": "Bitte Ja oder Nein wählen.", "string": "Bitte einen Text eingeben."}.get(
            arg if isinstance(arg, str) else "", "Der Wert hat nicht den erwarteten Typ."),
        "minimum": f"Der Wert muss mindestens {_num(arg)} sein.",
        "maximum": f"Der Wert darf höchstens {_num(arg)} sein.",
        "exclusiveMinimum": f"Der Wert muss größer als {_num(arg)} sein.",
        "exclusiveMaximum": f"Der Wert muss kleiner als {_num(arg)} sein.",
        "minLength": f"Bitte mindestens {arg} Zeichen eingeben.",
        "maxLength": f"Bitte höchstens {arg} Zeichen eingeben.",
        "enum": "Bitte einen der vorgegebenen Werte wählen.",
        "pattern": "Die Eingabe hat nicht das erwartete Format.",
        "format": "Die Eingabe hat nicht das erwartete Format"
                  + (" (Datum: TT.MM.JJJJ)." if arg == "date" else f" ({arg})."),
    }
    return messages.get(v, err.message)


def _num(value):
    return f"{value:g}".replace(".", ",") if isinstance(value, float) else str(value)
