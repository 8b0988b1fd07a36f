"""The case page: application data, documents with preview, history in German words, comments and the
BPMN diagram; the documents themselves (untrusted: served sandboxed); the admins' log of reads."""

from io import BytesIO

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from engine.documents import DocumentDamaged, case_documents, document_content, list_reads, log_read
from engine.errors import NotFound, OzgflowError
from engine.inbox import add_comment, comments, element_states, model_xml, view_case

from .auth import login_required, role_required

bp = Blueprint("cases", __name__)

ACTIONS = {
    "case_started": "Vorgang angelegt",
    "task_completed": "Aufgabe abgeschlossen",
    "variable_set": "Angabe gesetzt",
    "state_changed": "Status geändert",
    "script_run": "Automatischer Schritt ausgeführt",
    "service_called": "Dienst aufgerufen",
    "timer_fired": "Frist abgelaufen",
    "message_delivered": "Nachricht eingegangen",
    "followup_received": "Unterlagen über das Postfach nachgereicht",
    "error": "Fehler",
    "task_claimed": "Aufgabe übernommen",
    "task_unclaimed": "Aufgabe freigegeben",
    "task_assigned": "Aufgabe zugewiesen",
    "comment_added": "Kommentar",
    "case_suspended": "Vorgang angehalten",
    "case_resumed": "Vorgang fortgesetzt",
    "case_terminated": "Vorgang beendet",
    "case_moved": "Auf neue Modellversion umgestellt",
    "letter_created": "Brief erzeugt",
    "postversand_requested": "Brief zum Postversand gegeben",
    "letter_dispatched": "Brief versandt",
}
STATES = {"running": "in Bearbeitung", "waiting": "wartet", "completed": "abgeschlossen", "error": "Fehler",
          "suspended": "angehalten", "terminated": "beendet (abgebrochen)", None: "—"}
ACTORS = {"system": "System"}


def rt():
    return current_app.extensions["ozgflow"]


def _value(v):
    if v is True:
        return "ja"
    if v is False:
        return "nein"
    if v is None:
        return "—"
    if isinstance(v, dict):  # readable, not JSON: "(name: Erika, adresse: (ort: Marburg))"
        return "(" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def describe(entry, titles):
    """(what happened, details) of one history entry, in German words."""
    action, old, new = entry["action"], entry["old"], entry["new"]
    label = ACTIONS.get(action, action)
    element = titles.get(entry["element_id"], entry["element_id"]) if entry["element_id"] else ""
    if action == "variable_set":
        key = next(iter((new or old or {}).keys()), "")
        after = _value((new or {}).get(key))
        detail = f"{key}: {_value(old[key])} → {after}" if old and key in old else f"{key}: {after}"
        if new is None:
            detail = f"{key} entfernt"
    elif action == "state_changed":
        detail = f"{STATES.get(old, old)} → {STATES.get(new, new)}" if old else STATES.get(new, new)
    elif action in ("task_claimed", "task_unclaimed", "task_completed"):
        detail = (new or {}).get("title") or element
        if (new or {}).get("on_behalf_of"):
            detail += f" (in Vertretung für {new['on_behalf_of']})"
    elif action == "task_assigned":
        who = (new or {}).get("assignee")
        detail = f"{(new or {}).get('title') or element}: an {who}" if who else \
            f"{(new or {}).get('title') or element}: an die Gruppen zurück"
        if old and old.get("assignee"):
            detail += f" (vorher {old['assignee']})"
    elif action == "comment_added":
        detail = (new or {}).get("text", "")
    elif action == "case_started":
        detail = f"Prozess {(new or {}).get('process_id')}, Version {(new or {}).get('version')}"
    elif action == "error":
        detail = (new or {}).get("message", "")
    elif action in ("case_suspended", "case_resumed", "case_terminated"):
        detail = f"Grund: {(new or {}).get('reason', '')}"
    elif action == "followup_received":  # engine.followup
        detail = ", ".join(d.get("filename") or "" for d in (new or {}).get("documents", [])) or "ohne Anlagen"
    elif action == "case_moved":
        detail = f"Version {(new or {}).get('from_version')} → {(new or {}).get('to_version')}"
    else:
        detail = element
    return label, detail


def _case(case_id):
    try:
        return view_case(rt(), g.user, case_id)
    except NotFound:
        abort(404)


@bp.get("/vorgaenge/<int:case_id>")
@login_required
def show(case_id):
    case = _case(case_id)
    with rt().reader.connect() as conn:
        meta = rt().version(conn, case["version_id"]).meta
    titles = {eid: m.get("title") or eid for eid, m in meta.get("tasks", {}).items()}
    history = [{**e, "label": describe(e, titles)[0], "detail": describe(e, titles)[1],
                "who": ACTORS.get(e["actor"], e["actor"])} for e in reversed(case["history"])]
    states = element_states(rt(), case_id)
    log_read(rt(), g.user, case_id, "case")
    return render_template("case.html", case=case, history=history, comments=comments(rt(), case_id),
                           documents=case_documents(rt(), g.user, case_id),
                           states=states, active_titles=[titles.get(e, e) for e in states["active"]],
                           state_label=STATES.get(case["state"]))


# Citizens' files may be anything: served in a sandbox (no scripts, no plugins' access to us, no forms),
# never sniffed, framable by our own case page only.
DOCUMENT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


def document_response(person, case_id, document_id, via, download=False):
    """The document as an HTTP response with the headers that keep its content from acting (web and API)."""
    doc, content, mime = document_content(rt(), person, case_id, document_id)
    log_read(rt(), person, case_id, "document", via, document_id=doc["id"])
    response = send_file(BytesIO(content), mimetype=mime, as_attachment=download or mime == "application/octet-stream",
                         download_name=doc["filename"] or f"dokument-{doc['id']}", etag=False, max_age=0,
                         conditional=False)
    response.headers["Content-Security-Policy"] = DOCUMENT_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/vorgaenge/<int:case_id>/dokumente/<int:document_id>")
@login_required
def document(case_id, document_id):
    try:
        return document_response(g.user, case_id, document_id, "web", download=request.args.get("download") == "1")
    except NotFound:
        abort(404)
    except DocumentDamaged:
        abort(410, "Der Inhalt dieses Dokuments fehlt oder ist beschädigt.")


@bp.get("/protokoll/lesezugriffe")
@role_required("admin")
def reads():
    """Who viewed which case or document when (admins)."""
    case_id = request.args.get("vorgang", type=int)
    rows, total = list_reads(rt(), g.user, case_id=case_id, tenant=request.args.get("kommune") or None)
    return render_template("reads.html", rows=rows, total=total, case_id=case_id, what=READ_LABELS)


READ_LABELS = {"case": "Vorgang angesehen", "task": "Aufgabe angesehen", "document": "Dokument geöffnet"}


@bp.get("/vorgaenge/<int:case_id>/diagramm.bpmn")
@login_required
def diagram(case_id):
    case = _case(case_id)
    try:
        xml = model_xml(rt(), case["version_id"], case["process_id"])
    except NotFound:
        abort(404)
    return Response(xml, mimetype="application/xml")


@bp.post("/vorgaenge/<int:case_id>/kommentare")
@login_required
def comment(case_id):
    _case(case_id)
    try:
        add_comment(rt(), g.user, case_id, request.form.get("text", ""))
    except OzgflowError as exc:
        flash(str(exc), "error")
    else:
        flash("Kommentar gespeichert.", "ok")
    return redirect(url_for("cases.show", case_id=case_id) + "#kommentare")
