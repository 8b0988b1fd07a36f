"""Versions of the shared models, the diff between two, moving running cases, and suspending cases.

Pages (German; session login; forms CSRF-protected):

| URL                                                       | who              | what                                |
|-----------------------------------------------------------|------------------|-------------------------------------|
| ``/modelle/<process>/versionen/<n>``                      | designer, admin  | version: diagram, bindings, cases   |
| ``/modelle/<process>/versionen/<n>/diagramm.bpmn``        | designer, admin  | the version's BPMN XML              |
| ``/modelle/<process>/versionen/<a>/vergleich/<b>``        | designer, admin  | elements added, removed, changed    |
| ``/modelle/<process>/versionen/<n>/umstellen?nach=<m>``   | admin            | preview; POST moves the cases       |
| ``POST /vorgaenge/<id>/anhalten|fortsetzen|beenden``      | admin            | suspend, resume, terminate a case   |

API (bearer token), same roles:

| ``GET /api/v1/process-models/<process>/versions``                    | versions with case counts, bindings |
| ``GET /api/v1/process-models/<process>/versions/<n>``                | one version (``engine.versions``)   |
| ``GET /api/v1/process-models/<process>/versions/<n>/bpmn``           | its BPMN XML                        |
| ``GET /api/v1/process-models/<process>/versions/<a>/diff/<b>``       | the diff as JSON                    |
| ``POST /api/v1/process-models/<process>/migrations/preview``         | ``{"from", "to", "cases"?}``        |
| ``POST /api/v1/process-models/<process>/migrations``                 | the move, same body                 |
| ``POST /api/v1/cases/<id>/suspend|resume|terminate``                 | ``{"reason"}``                      |

Moving cases and suspending them are admin work: they touch running cases of every city, and only admins
see every city's cases. Designers see the versions, their case counts and the diff.
"""

import re
from functools import wraps

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for

from engine import moves, suspension
from engine.errors import CaseClosed, CaseError, CaseSuspended, NotFound, OzgflowError
from engine.inbox import case_tenant
from engine.versions import bindings_for, diff_versions, list_versions_detailed, version_bpmn, version_info

from .api import error, token_required
from .auth import role_required
from .cases import STATES
from .designer import DESIGNER_ROLES

bp = Blueprint("versions", __name__)
bp.add_app_template_filter(lambda text: german_reason(text), "grund")
api_bp = Blueprint("versions_api", __name__, url_prefix="/api/v1")
STATE_ACTIONS = {"suspend": suspension.suspend, "resume": suspension.resume, "terminate": suspension.terminate}
PAGE_ACTIONS = {"anhalten": ("suspend", "Der Vorgang ist angehalten."),
                "fortsetzen": ("resume", "Der Vorgang läuft weiter."),
                "beenden": ("terminate", "Der Vorgang ist beendet; offene Aufgaben und Fristen sind aufgehoben.")}


def init_app(app):
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    app.extensions["csrf"].exempt(api_bp)  # bearer tokens, no cookies


def rt():
    return current_app.extensions["ozgflow"]


def api_roles(*roles):
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if g.user.role not in roles:
                return error(403, f"only {' and '.join(r + 's' for r in roles)} may do this")
            try:
                return view(*args, **kwargs)
            except NotFound as exc:
                return error(404, str(exc))
            except moves.MoveError as exc:
                return error(422, str(exc))
            except (CaseSuspended, CaseClosed) as exc:
                return error(409, str(exc))
            except CaseError as exc:
                return error(422 if "reason" in str(exc) else 409, str(exc))

        return token_required(wrapped)

    return decorate


# --- API -------------------------------------------------------------------------------------------------------


@api_bp.get("/process-models/<process_id>/versions")
@api_roles(*DESIGNER_ROLES)
def api_versions(process_id):
    return {"process_id": process_id, "versions": list_versions_detailed(rt(), process_id),
            "bindings": bindings_for(rt(), process_id)}


@api_bp.get("/process-models/<process_id>/versions/<int:version>")
@api_roles(*DESIGNER_ROLES)
def api_version(process_id, version):
    info = version_info(rt(), process_id, version)
    info["bpmn_url"] = url_for("versions_api.api_bpmn", process_id=process_id, version=version)
    return info


@api_bp.get("/process-models/<process_id>/versions/<int:version>/bpmn")
@api_roles(*DESIGNER_ROLES)
def api_bpmn(process_id, version):
    return _xml(version_bpmn(rt(), process_id, version))


@api_bp.get("/process-models/<process_id>/versions/<int:a>/diff/<int:b>")
@api_roles(*DESIGNER_ROLES)
def api_diff(process_id, a, b):
    return diff_versions(rt(), process_id, a, b)


def _move_body():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise moves.MoveError('the body must be a JSON object {"from": N, "to": M} (optionally "cases": [ids])')
    try:
        cases = body.get("cases")
        cases = None if cases is None else [int(c) for c in cases]
        return int(body["from"]), int(body["to"]), cases
    except (KeyError, TypeError, ValueError):
        raise moves.MoveError('"from" and "to" must be version numbers, "cases" a list of case ids') from None


@api_bp.post("/process-models/<process_id>/migrations/preview")
@api_roles("admin")
def api_move_preview(process_id):
    a, b, cases = _move_body()
    return moves.preview(rt(), process_id, a, b, cases)


@api_bp.post("/process-models/<process_id>/migrations")
@api_roles("admin")
def api_move(process_id):
    a, b, cases = _move_body()
    return moves.move(rt(), process_id, a, b, g.user.name, cases)


@api_bp.post("/cases/<int:case_id>/suspend", defaults={"action": "suspend"})
@api_bp.post("/cases/<int:case_id>/resume", defaults={"action": "resume"})
@api_bp.post("/cases/<int:case_id>/terminate", defaults={"action": "terminate"})
@api_roles("admin")
def api_case_state(case_id, action):
    body = request.get_json(silent=True) if request.content_length else {}
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return error(422, 'a "reason" is required (it is kept in the case\'s history)')
    return STATE_ACTIONS[action](rt(), case_id, g.user.name, reason)


def _xml(content):
    response = Response(content, mimetype="application/xml")
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- pages -----------------------------------------------------------------------------------------------------


def _or_404(fn, *args):
    try:
        return fn(*args)
    except NotFound:
        abort(404)


@bp.get("/modelle/<process_id>/versionen/<int:version>")
@role_required(*DESIGNER_ROLES)
def version_page(process_id, version):
    info = _or_404(version_info, rt(), process_id, version)
    others = [v["version"] for v in list_versions_detailed(rt(), process_id) if v["version"] != version]
    later = [v for v in others if v > version]
    return render_template("version.html", v=info, others=others, later=later, tenants=rt().tenants.tenants)


@bp.get("/modelle/<process_id>/versionen/<int:version>/diagramm.bpmn")
@role_required(*DESIGNER_ROLES)
def version_diagram(process_id, version):
    return _xml(_or_404(version_bpmn, rt(), process_id, version))


@bp.get("/modelle/<process_id>/versionen/<int:a>/vergleich/<int:b>")
@role_required(*DESIGNER_ROLES)
def diff_page(process_id, a, b):
    d = _or_404(diff_versions, rt(), process_id, a, b)
    return render_template("version_diff.html", d=d)


@bp.route("/modelle/<process_id>/versionen/<int:version>/umstellen", methods=["GET", "POST"])
@role_required("admin")
def move_page(process_id, version):
    target = request.values.get("nach", type=int)
    if target is None:
        abort(400, "Bitte die Zielversion angeben (nach=…).")
    try:
        if request.method == "POST":  # CSRF: checked by CSRFProtect for every form POST of the pages
            report = moves.move(rt(), process_id, version, target, g.user.name)
            return render_template("version_move.html", report=report, done=True, states=STATES)
        report = moves.preview(rt(), process_id, version, target)
    except NotFound:
        abort(404)
    except moves.MoveError as exc:
        abort(400, str(exc))
    return render_template("version_move.html", report=report, done=False, states=STATES)


@bp.post("/vorgaenge/<int:case_id>/<any(anhalten, fortsetzen, beenden):action>")
@role_required("admin")
def case_state(case_id, action):
    if case_tenant(rt(), case_id) is None:
        abort(404)
    name, done = PAGE_ACTIONS[action]
    try:
        STATE_ACTIONS[name](rt(), case_id, g.user.name, request.form.get("grund", ""))
    except CaseError as exc:
        flash(_german(exc), "error")
    except OzgflowError as exc:
        flash(str(exc), "error")
    else:
        flash(done, "ok")
    return redirect(url_for("cases.show", case_id=case_id))


# The engine explains in English (API, CLI); the page says the same in German.
GERMAN_REASONS = [
    (r"^in (.+?): ", r"in \1: "),
    (r"waits at (.+?), which version (\d+) does not have", r"wartet an \1, das es in Version \2 nicht gibt"),
    (r"failed at (.+?), which version (\d+) does not have", r"ist gescheitert an \1, das es in Version \2 nicht gibt"),
    (r"has a token on (.+?), which version (\d+) does not have", r"steht an \1, das es in Version \2 nicht gibt"),
    (r"(waits at|failed at|has a token on) (.+?), whose id is (.+?) in version (\d+) \(a renamed element cannot be "
     r"followed\)", r"steht an \2, das in Version \4 die ID \3 hat (umbenannte Elemente können nicht verfolgt "
     r"werden)"),
    (r"it runs (.+?), which version (\d+) does not contain", r"es läuft \1, das Version \2 nicht enthält"),
    (r"^the case is suspended: resume it first$", "der Vorgang ist angehalten: bitte zuerst fortsetzen"),
    (r"^the case is no longer on version (\d+)$", r"der Vorgang ist nicht mehr auf Version \1"),
    (r"^on version (\d+) the case fails: ", r"auf Version \1 läuft der Vorgang auf einen Fehler: "),
    (r"^the timer (.+?) changed: its due time is computed anew from now$",
     r"die Frist \1 wurde geändert: sie läuft ab dem Umstellen neu"),
    (r"^the failed step runs again on version (\d+) when the case moves$",
     r"der gescheiterte Schritt läuft beim Umstellen auf Version \1 noch einmal"),
    (r"^the moved case (does not read back|reads back differently) against version (\d+)",
     r"der umgestellte Vorgang lässt sich mit Version \2 nicht wieder einlesen"),
]


def german_reason(text):
    for pattern, replacement in GERMAN_REASONS:
        text = re.sub(pattern, replacement, text)
    return text


def _german(exc):
    text = str(exc)
    if "reason" in text:
        return "Bitte einen Grund angeben; er wird im Verlauf des Vorgangs festgehalten."
    if isinstance(exc, CaseSuspended):
        return "Der Vorgang ist bereits angehalten."
    if isinstance(exc, CaseClosed):
        return "Der Vorgang ist bereits abgeschlossen oder beendet."
    if "not suspended" in text:
        return "Der Vorgang ist nicht angehalten."
    return text
