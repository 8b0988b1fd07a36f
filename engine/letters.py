"""Decision letters (Bescheide): Jinja2 templates of a process model, rendered to PDF/A.

A model's letters are ``letters/<name>.html`` in its folder. They are deployed and versioned with the model
(stored as model files of the version), so a running case always uses its own version's template. An
uploaded template is code from outside: it is rendered in Jinja2's ``SandboxedEnvironment`` with autoescape
(no attribute access to internals such as ``''.__class__``, no imports, no file access), and the PDF
renderer (weasyprint) fetches nothing — no ``http:``, no ``file:`` URL; only ``data:`` URIs are loaded.

The context of a template (contract A): ``case`` {id, aktenzeichen, tenant, process_id, created_at},
``data`` (the case data), ``tenant`` {id, name, ags, letterhead, … the tenant's settings}, ``today`` (the
date in Europe/Berlin), ``letter`` {name, title}. The tenant's letterhead and signature line come from
``[tenants.<id>.letterhead]``; a template shows them with ``{% include "letterhead" %}`` and
``{% include "signature" %}`` (built in), or uses ``tenant.letterhead`` itself.

Deploy checks every send task's letter: the template must be in the upload and compile (file and line
named otherwise); the send task's properties become ``meta["letters"]`` of the version, and each gets its
"Postversand" user task (``<send task id>_Postversand``) in ``meta["tasks"]``.
"""

import json
import posixpath
from datetime import date, datetime
from zoneinfo import ZoneInfo

from jinja2 import BaseLoader, ChainableUndefined, TemplateNotFound, TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from .errors import OzgflowError, Problem
from .schema import ModelFile, ProcessVersion

BERLIN = ZoneInfo("Europe/Berlin")
LETTER_DIR = "letters"
PDF_VARIANT = "pdf/a-3b"
DEEMED_RULES = ("vwvfg41", "ao122")
POST_GROUP = "poststelle"
MAX_TEMPLATE_BYTES = 512 * 1024

LETTERHEAD = """<header class="letterhead" style="font-size:9pt;margin-bottom:12mm">
<div style="font-size:13pt;font-weight:bold">{{ tenant.letterhead.authority or tenant.name }}</div>
{% if tenant.letterhead.department %}<div>{{ tenant.letterhead.department }}</div>{% endif %}
<div>{{ [tenant.letterhead.street, tenant.letterhead.postcode_city]|select|join(", ") }}</div>
<div>{{ [tenant.letterhead.phone, tenant.letterhead.email, tenant.letterhead.web]|select|join(" · ") }}</div>
</header>"""
SIGNATURE = """<div class="signature" style="margin-top:12mm">
<div>Mit freundlichen Grüßen</div>
<div style="margin-top:8mm">{{ tenant.letterhead.signature_name or "" }}</div>
<div>{{ tenant.letterhead.signature_role or "" }}</div>
<div style="font-size:8pt;margin-top:4mm">Dieses Schreiben wurde elektronisch erstellt und ist ohne Unterschrift
gültig.</div>
{% if tenant.letterhead.bank %}<div style="font-size:8pt">{{ tenant.letterhead.bank }}</div>{% endif %}
</div>"""
BUILT_IN = {"letterhead": LETTERHEAD, "signature": SIGNATURE}


class LetterError(OzgflowError):
    """A letter could not be rendered (missing template, template error, PDF failure)."""


class _Loader(BaseLoader):
    """Templates of one bundle (``letters/…``) plus the built-in letterhead and signature."""

    def __init__(self, files):
        self.files = files

    def get_source(self, environment, name):
        if name in BUILT_IN:
            return BUILT_IN[name], None, lambda: True
        path = name if name.startswith(LETTER_DIR + "/") else f"{LETTER_DIR}/{name}"
        path = posixpath.normpath(path)
        if not path.startswith(LETTER_DIR + "/") or path not in self.files:
            raise TemplateNotFound(name)
        return self.files[path].decode("utf-8"), path, lambda: True


class _LenientUndefined(ChainableUndefined):
    """A missing value renders empty (the letter must not fail for an optional field); what the sandbox
    refused (an unsafe attribute) fails the rendering, however it is used."""

    def _refused(self):
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()

    def __getattr__(self, name):
        self._refused()
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, _key):
        self._refused()
        return self

    def __str__(self):
        self._refused()
        return ""

    def __html__(self):
        return str(self)

    def __iter__(self):
        self._refused()
        return iter(())


def environment(files):
    """A sandboxed, autoescaping Jinja2 environment over ``files`` ({path: bytes} of a model version)."""
    env = SandboxedEnvironment(loader=_Loader(files), autoescape=True, undefined=_LenientUndefined)
    env.filters["datum"] = _german_date
    env.filters["euro"] = _euro
    return env


def _german_date(value):
    if isinstance(value, Undefined):
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.astimezone(BERLIN).date()
    return value.strftime("%d.%m.%Y") if isinstance(value, date) else value


def _euro(value):
    if isinstance(value, Undefined):
        return ""
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return value
    text = f"{amount:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return f"{text} €"


def template_path(name):
    return f"{LETTER_DIR}/{name}.html"


def context(tenant, case, data, name, title=None, today=None):
    """The template context of contract A. ``case``: a mapping with id, aktenzeichen, tenant, process_id,
    created_at; ``tenant``: an ``engine.tenants.Tenant``."""
    created = case.get("created_at")
    settings = _public(tenant.settings or {})
    for key in [k for k in settings if "secret" in k]:  # nor the ePayment secret (payment_notify_secret…)
        settings.pop(key)
    return {
        "case": {"id": case.get("id"), "aktenzeichen": case.get("aktenzeichen"), "tenant": case.get("tenant"),
                 "process_id": case.get("process_id"),
                 "created_at": created.isoformat() if isinstance(created, datetime) else created},
        "data": data,
        "tenant": {**settings, "id": tenant.id, "name": tenant.name, "ags": tenant.ags,
                   "letterhead": dict(settings.get("letterhead") or {})},
        "today": today or datetime.now(BERLIN).date(),
        "letter": {"name": name, "title": title or name},
    }


SECRET_WORDS = ("secret", "password", "passwort", "token", "key")


def _public(settings):
    """The tenant's settings without mail server settings and anything that names a secret (a template is
    uploaded code: it must not be able to print a shared secret into a letter)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()
                    if not any(word in str(k).lower() for word in SECRET_WORDS)}
        return value

    return {k: v for k, v in clean(dict(settings)).items() if k != "mail"}


def render_html(files, name, ctx):
    """The letter ``name`` of a version's ``files`` rendered with ``ctx``; raises LetterError."""
    env = environment(files)
    try:
        return env.get_template(template_path(name)).render(ctx)
    except TemplateNotFound:
        raise LetterError(f"letter template {template_path(name)!r} is not part of the model") from None
    except SecurityError as exc:
        raise LetterError(f"letter {name!r}: the template tried something the sandbox forbids: {exc}") from None
    except TemplateError as exc:
        raise LetterError(f"letter {name!r}: {exc.__class__.__name__}: {exc}") from None


def url_fetcher():
    """weasyprint's fetcher limited to inline ``data:`` URIs: a letter never reaches the network or the disk."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=("data",), allow_redirects=False, timeout=5)


def render_pdf(html):
    """PDF/A-3b bytes of a rendered letter (weasyprint; external resources are refused)."""
    import logging

    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # a refused URL is logged there, not raised
    try:
        return HTML(string=html, url_fetcher=url_fetcher()).write_pdf(pdf_variant=PDF_VARIANT)
    except Exception as exc:  # weasyprint's own failures: named, never a crash of the worker
        raise LetterError(f"the letter could not be turned into a PDF: {exc.__class__.__name__}: {exc}") from None


# --- the files of a version -------------------------------------------------------------------------------


def version_files(conn, version_id):
    """{path: bytes} of the letter templates of a deployed version (``conn``: SQLAlchemy connection)."""
    rows = conn.execute(select(ModelFile.path, ModelFile.content)
                        .where(ModelFile.version_id == version_id,
                               ModelFile.path.like(f"{LETTER_DIR}/%"))).all()
    return {r.path: bytes(r.content) for r in rows}


def newest_version_id(conn, process_id):
    return conn.execute(select(ProcessVersion.id).where(ProcessVersion.process_id == process_id,
                                                        ProcessVersion.executable.is_(True))
                        .order_by(ProcessVersion.version.desc()).limit(1)).scalar()


# --- deploy: the send tasks and previews of a bundle ------------------------------------------------------


def _props(node, spiff_ns, camunda_ns):
    props = {}
    for p in node.iter(f"{{{spiff_ns}}}property", f"{{{camunda_ns}}}property"):
        if p.get("name"):
            props[p.get("name")] = p.get("value") if p.get("value") is not None else (p.text or "")
    return props


def _bool(value, default=False):
    if value is None or str(value).strip() == "":
        return default
    return str(value).strip().lower() in ("true", "1", "yes", "ja")


def _letter_problem(files, name):
    """None if the template ``name`` exists and compiles, else the message of why not (with its line)."""
    path = template_path(name)
    if path not in files:
        return None, f"letter template {path!r} is not in the upload"
    if len(files[path]) > MAX_TEMPLATE_BYTES:
        return path, f"letter template {path!r} is larger than {MAX_TEMPLATE_BYTES // 1024} KiB"
    try:
        environment(files).get_template(path)
    except TemplateSyntaxError as exc:
        return exc.lineno, f"letter template {path!r} line {exc.lineno}: {exc.message}"
    except UnicodeDecodeError:
        return path, f"letter template {path!r} is not UTF-8 text"
    return None, None


def check_bundle(trees, files, lines, spiff_ns, camunda_ns):
    """Send tasks with a ``letter`` property and user tasks with ``preview_letter`` in the BPMN ``trees``
    of a bundle: returns (letters meta, {element: extra task meta}, problems)."""
    letters, tasks, problems = {}, {}, []
    letter_files = {p: d for p, d in files.items() if p.startswith(LETTER_DIR + "/")}
    for path, tree in trees.items():
        lanes = {}
        for lane in tree.getroot().iter("{*}lane"):
            for ref in lane.iter("{*}flowNodeRef"):
                lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id")
        for node in tree.getroot().iter("{*}sendTask", "{*}userTask", "{*}manualTask"):
            element = node.get("id")
            props = _props(node, spiff_ns, camunda_ns)
            kind = node.tag.rsplit("}", 1)[-1]
            name = (props.get("letter") if kind == "sendTask" else props.get("preview_letter")) or ""
            name = name.strip()
            if not name:
                continue
            if not _safe_name(name):
                problems.append(Problem(path, node.sourceline, element,
                                        f"letter name {name!r}: use letters, digits, '-' and '_' only"))
                continue
            where, message = _letter_problem(letter_files, name)
            if message:
                problems.append(Problem(path, node.sourceline, element, message))
                continue
            if kind != "sendTask":
                tasks[element] = {"preview_letter": name}
                continue
            rule = (props.get("deemed_delivery") or "").strip().lower() or None
            if rule is not None and rule not in DEEMED_RULES:
                problems.append(Problem(path, node.sourceline, element,
                                        f"deemed_delivery {rule!r}: use one of {', '.join(DEEMED_RULES)}"))
                continue
            title = (props.get("title") or node.get("name") or name).strip()
            group = lanes.get(element) or POST_GROUP
            letters[element] = {"letter": name, "title": title, "email_allowed": _bool(props.get("email_allowed")),
                                "deemed_delivery": rule, "group": group}
            tasks[f"{element}_Postversand"] = {
                "title": f"Postversand: {title}", "groups": [group], "candidate_users": [], "assignee": None,
                "due": None, "follow_up": None,
                "form": None, "four_eyes_of": None, "preview_letter": name, "postversand_of": element,
                "documentation": "Den Brief ausdrucken, kuvertieren und mit der Post versenden; danach diese "
                                 "Aufgabe abschließen.",
            }
    return letters, tasks, problems


def _safe_name(name):
    return name.replace("-", "").replace("_", "").isalnum() and len(name) <= 100


def attach_letters(db, version):
    """Mark the loaded specs of ``version`` with their letter send tasks (``spec.ozgflow_letters``: element ->
    config), read by ``engine.dispatch.letter_of``. A send task of a called model (a call activity into
    another deployed model) takes its config from that model's newest version (``version_id`` names it, for
    its template). ``db``: an ``engine.lean.Lean`` cursor."""
    own = version.meta.get("letters") or {}
    version.spec.ozgflow_letters = own
    for process_id, sub in version.subprocess_specs.items():
        found = dict(own)
        missing = [ts.bpmn_id for ts in sub.task_specs.values()
                   if type(ts).__name__ == "SendTask" and ts.bpmn_id not in own]
        if missing:
            row = db.one("SELECT id, meta FROM process_version WHERE process_id = ? AND executable = ? "
                         "ORDER BY version DESC LIMIT 1", (process_id, True))
            if row is not None:
                other_meta = json.loads(row[1])
                other = other_meta.get("letters") or {}
                found.update({k: {**v, "version_id": row[0]} for k, v in other.items() if k in missing})
                for k in set(other) & set(missing):  # its Postversand task, as that model describes it
                    task = (other_meta.get("tasks") or {}).get(f"{k}_Postversand")
                    if task is not None:
                        version.meta.setdefault("tasks", {}).setdefault(f"{k}_Postversand", task)
        sub.ozgflow_letters = found


def today_in_berlin(now):
    return now.astimezone(BERLIN).date()

