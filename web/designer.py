"""For process designers: upload models and list the shared models and their versions, by API and on the
page ``/modelle`` (German, role designer or admin, CSRF-protected form; the same checks and limits).

``POST /api/v1/process-models`` (bearer token, role designer or admin) takes multipart parts named
``files`` — ``.bpmn``, ``.dmn``, form files, letter templates — or one zip of a process folder. Answers:
201 ``{"versions": [{"process_id", "version", "new"}]}`` (200 when nothing was new), 422
``{"errors": [{"file", "line", "element", "message"}]}`` with nothing stored, 413 over a limit, 403 for
other roles. ``GET /api/v1/process-models`` lists every model and its versions (models are shared by all
cities; designers and admins only, 403 for other roles).

| setting (env OZGFLOW_…)     | default                                   |
|-----------------------------|-------------------------------------------|
| UPLOAD_MAX_FILE_BYTES       | 10485760 (10 MiB a file, also inside a zip) |
| UPLOAD_MAX_REQUEST_BYTES    | 52428800 (50 MiB a request)               |
| UPLOAD_MAX_UNPACKED_BYTES   | 52428800 (50 MiB unpacked from one zip)   |
"""

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from engine.deploy import deploy, list_models
from engine.errors import DeployError
from engine.uploads import TooLarge, UploadLimits, bundle_from_parts
from engine.versions import counts_by_version

from .api import error, token_required
from .auth import role_required

api_bp = Blueprint("designer_api", __name__, url_prefix="/api/v1")
bp = Blueprint("designer", __name__)
DESIGNER_ROLES = ("designer", "admin")
MULTIPART_OVERHEAD = 256 * 1024  # part headers and boundaries on top of the files themselves


def init_app(app):
    """Register the designer API; bearer tokens, no cookies: no CSRF token to check there."""
    app.register_blueprint(api_bp)
    app.register_blueprint(bp)
    app.extensions["csrf"].exempt(api_bp)
    # the page checks its CSRF token itself, after capping the body: the global check would parse it first
    app.extensions["csrf"].exempt("web.designer.upload_page")


def rt():
    return current_app.extensions["ozgflow"]


def upload_limits():
    cfg, defaults = current_app.config, UploadLimits()
    return UploadLimits(file_bytes=int(cfg.get("UPLOAD_MAX_FILE_BYTES", defaults.file_bytes)),
                        request_bytes=int(cfg.get("UPLOAD_MAX_REQUEST_BYTES", defaults.request_bytes)),
                        unpacked_bytes=int(cfg.get("UPLOAD_MAX_UNPACKED_BYTES", defaults.unpacked_bytes)))


def designer_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.user.role not in DESIGNER_ROLES:
            return error(403, "only designers (and admins) may upload or list process models")
        return view(*args, **kwargs)

    return token_required(wrapped)


@api_bp.errorhandler(HTTPException)
def _http_error(exc):
    return error(exc.code or 500, exc.description or exc.name)


def read_parts(limits):
    """The uploaded ``files`` parts as (name, bytes); the request body is capped before it is parsed."""
    cap = limits.request_bytes + MULTIPART_OVERHEAD
    if request.content_length is not None and request.content_length > cap:
        raise TooLarge(f"the request has {request.content_length} bytes, the limit is {limits.request_bytes}")
    request.max_content_length = cap  # also for bodies without Content-Length: 413 while streaming
    parts = []
    for storage in request.files.getlist("files"):
        data = storage.read(limits.file_bytes + 1)
        if not storage.filename and not data:
            continue  # a browser's empty file field
        if len(data) > limits.file_bytes:
            raise TooLarge(f"{storage.filename}: the file is larger than the limit of {limits.file_bytes} bytes")
        parts.append((storage.filename or "", data))
    return parts


@api_bp.post("/process-models")
@designer_required
def upload():
    limits = upload_limits()
    try:
        bundle = bundle_from_parts(read_parts(limits), limits)
        results = deploy(rt(), [bundle], actor=g.user.name)
    except TooLarge as exc:
        return error(413, str(exc))
    except DeployError as exc:
        return error(422, "the upload was refused; nothing was stored", errors=[p.as_dict() for p in exc.problems])
    status = 201 if any(r["new"] for r in results) else 200
    return jsonify(versions=results), status


@api_bp.get("/process-models")
@designer_required
def models():
    found = list_models(rt())
    counts = counts_by_version(rt())  # engine.versions: cases per version (open: running, waiting, error, suspended)
    for model in found:
        newest = max((v["version"] for v in model["versions"] if v["executable"]), default=None)
        for v in model["versions"]:
            v["created_at"] = v["created_at"].isoformat() if v["created_at"] else None
            v["cases"] = counts.get((model["process_id"], v["version"]), {"open": 0, "closed": 0})
            v["starts_new_cases"] = v["version"] == newest
    return jsonify(models=found)


def _upload(limits):
    """(status, versions, problems, message) of one upload from the page: the API's checks, in words."""
    try:
        parts = read_parts(limits)
        current_app.extensions["csrf"].protect()
        results = deploy(rt(), [bundle_from_parts(parts, limits)], actor=g.user.name)
    except (TooLarge, RequestEntityTooLarge):
        mib = limits.file_bytes // (1024 * 1024), limits.request_bytes // (1024 * 1024)
        return 413, [], [], f"Die Dateien sind zu groß (höchstens {mib[0]} MiB je Datei, {mib[1]} MiB insgesamt)."
    except DeployError as exc:
        return 422, [], exc.problems, "Das Modell wurde abgelehnt; es wurde nichts gespeichert."
    return 200, results, [], None


@bp.route("/modelle", methods=["GET", "POST"])
@role_required(*DESIGNER_ROLES)
def upload_page():
    """Upload form with the validation report, and every model with its versions."""
    status, versions, problems, message = 200, [], [], None
    if request.method == "POST":
        status, versions, problems, message = _upload(upload_limits())
    return render_template("designer.html", models=list_models(rt()), versions=versions, problems=problems,
                           message=message, counts=counts_by_version(rt())), status
