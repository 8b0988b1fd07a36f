"""The OpenAPI 3 description of ``/api/v1`` (served at ``/api/v1/openapi.json``, no token needed).

Written by hand next to the views it describes; ``tests/test_web_openapi.py`` checks that every
operation here is a route of the app and every ``/api/v1`` route is described here.
"""

VERSION = "1.0.0"

_ERROR = {"type": "object", "required": ["error"],
          "properties": {"error": {"type": "string"},
                         "fields": {"type": "object", "additionalProperties": {"type": "string"},
                                    "description": "messages per form field (422)"}}}
_TASK = {"type": "object",
         "required": ["id", "case_id", "element_id", "title", "groups", "assignee", "due", "follow_up"],
         "properties": {"id": {"type": "string", "format": "uuid"}, "case_id": {"type": "integer"},
                        "element_id": {"type": "string"}, "title": {"type": "string"},
                        "groups": {"type": "array", "items": {"type": "string"}},
                        "assignee": {"type": ["string", "null"]},
                        "due": {"type": ["string", "null"], "format": "date-time"},
                        "follow_up": {"type": ["string", "null"], "format": "date-time",
                                      "description": "Wiedervorlage (camunda:followUpDate)"}}}
_CASE = {"type": "object",
         "properties": {"id": {"type": "integer"}, "state": {"type": "string"}, "process_id": {"type": "string"},
                        "version": {"type": "integer"}, "tenant": {"type": "string"},
                        "aktenzeichen": {"type": "string"}, "submission_id": {"type": ["string", "null"]},
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                        "data": {"type": "object"},
                        "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                        "history": {"type": "array", "items": {"type": "object"}}}}
_OBJECT = {"type": "object"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TEXTS = {400: "bad request", 401: "no valid bearer token", 403: "not allowed for this user",
          404: "unknown, or another tenant's", 409: "already completed, taken, or changed meanwhile",
          410: "the stored content is missing or damaged", 422: "the form data is invalid (see fields)"}


# One reason an upload was refused (engine.errors.Problem): column only for XML syntax and schema errors.
_PROBLEM = {"type": "object", "required": ["file", "line", "column", "element", "message"], "properties": {
    "file": {"type": "string"}, "line": {"type": ["integer", "null"]}, "column": {"type": ["integer", "null"]},
    "element": {"type": ["string", "null"]}, "message": {"type": "string"}}}


def _errors(*codes):
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in codes}


def _path_param(name, schema):
    return {"name": name, "in": "path", "required": True, "schema": schema}


TASK_ID = _path_param("task_id", {"type": "string", "format": "uuid"})
CASE_ID = _path_param("case_id", {"type": "integer"})
JOB_ID = _path_param("job_id", {"type": "integer"})
OPERATORS = "Token of a team lead or an admin (team leads see their tenant)."


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _operation(summary, responses, parameters=(), body=None, public=False, description=None):
    op = {"summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        op["security"] = []
    return op


def _paths():
    task_action = {"200": _json({"$ref": "#/components/schemas/Task"}, "the task after the change"),
                   **_errors(401, 403, 404, 409)}
    return {
        "/api/v1/tasks": {"get": _operation(
            "The inbox: open tasks of the token's user and their groups, soonest due first",
            {"200": _json({"type": "object", "required": ["items", "total"],
                           "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                                          "total": {"type": "integer"}}}, "one page of tasks and their total"),
             **_errors(400, 401)},
            [_query("scope", {"type": "string", "enum": ["all", "mine", "groups", "unassigned"]}, "which tasks"),
             _query("process", {"type": "string"}, "process id"), _query("task", {"type": "string"}, "element id"),
             _query("overdue", {"type": "string", "enum": ["1", "true"]}, "only overdue tasks"),
             _query("q", {"type": "string"}, "Aktenzeichen (prefix) or words of the applicant's name"),
             _query("tenant", {"type": "string"}, "admins: one tenant"),
             _query("page", {"type": "integer", "minimum": 1}, "page number"),
             _query("per_page", {"type": "integer", "minimum": 1, "maximum": 500}, "tasks per page (100)")])},
        "/api/v1/tasks/{task_id}/claim": {"post": _operation("Claim a task", task_action, [TASK_ID])},
        "/api/v1/tasks/{task_id}/unclaim": {"post": _operation("Give a task back to its groups", task_action,
                                                               [TASK_ID])},
        "/api/v1/tasks/{task_id}/complete": {"post": _operation(
            "Complete a task with its form data (claims it on the way if unassigned)",
            {"200": _json({"type": "object", "properties": {"task_id": {"type": "string"},
                                                            "case_id": {"type": "integer"},
                                                            "state": {"type": "string"}}}, "the case's new state"),
             **_errors(400, 401, 403, 404, 409, 422)}, [TASK_ID], body=_OBJECT)},
        "/api/v1/cases/{case_id}": {"get": _operation(
            "A case: data, open tasks, history (the read is logged)",
            {"200": _json({"$ref": "#/components/schemas/Case"}, "the case"), **_errors(401, 404)}, [CASE_ID])},
        "/api/v1/cases/{case_id}/documents/{document_id}": {"get": _operation(
            "A document of the case (the read is logged)",
            {"200": {"description": "the content; PDF and images as their type, anything else as "
                                    "application/octet-stream, always with Content-Security-Policy: sandbox and "
                                    "X-Content-Type-Options: nosniff",
                     "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
             **_errors(401, 404, 410)},
            [CASE_ID, _path_param("document_id", {"type": "integer"}),
             _query("download", {"type": "string", "enum": ["1"]}, "as attachment")])},
        "/api/v1/openapi.json": {"get": _operation("This document", {"200": _json(_OBJECT, "OpenAPI 3")},
                                                   public=True)},
        "/api/v1/messages": {"post": _operation(
            "Deliver a message to the case waiting for it (BPMN message event)",
            {"202": _json(_OBJECT, "delivered, or kept until a case waits for it"),
             "404": _json({"$ref": "#/components/schemas/Error"}, "no case matches: dead letter"),
             **_errors(400, 401, 403, 409)},
            body={"type": "object", "required": ["name", "correlation"],
                  "properties": {"name": {"type": "string"}, "correlation": _OBJECT, "payload": _OBJECT,
                                 "ttl_seconds": {"type": "number"}}})},
        "/api/v1/messages/dead": {"get": _operation("The dead-letter list", {"200": _json(_OBJECT, "items"),
                                                                             **_errors(401, 403)},
                                                    description=OPERATORS)},
        "/api/v1/payments/{tenant_id}/notify": {"post": _operation(
            "Payment notification of the ePayment provider (header X-Signature: HMAC-SHA256 of the body)",
            {"202": _json(_OBJECT, "accepted"), **_errors(400, 401, 404)},
            [_path_param("tenant_id", {"type": "string"})],
            body={"type": "object", "required": ["kassenzeichen", "status"]}, public=True)},
        "/api/v1/incidents": {"get": _operation("Open incidents (jobs that ran out of attempts)",
                                                {"200": _json(_OBJECT, "items"), **_errors(401, 403)},
                                                description=OPERATORS)},
        "/api/v1/incidents/{job_id}/retry": {"post": _operation(
            "Retry an incident", {"200": _json(_OBJECT, "the job"), **_errors(401, 403, 404, 409)}, [JOB_ID],
            description=OPERATORS)},
        "/api/v1/incidents/{job_id}/cancel": {"post": _operation(
            "Cancel an incident", {"200": _json(_OBJECT, "the job"), **_errors(401, 403, 404, 409)}, [JOB_ID],
            description=OPERATORS)},
        "/api/v1/ikz": {"get": _operation(
            "IKZ dashboard figures per city and process: received, open, overdue, median processing time, time per "
            "step, media breaks (aggregates only, every city; see docs/operator.md)",
            {"200": _json(_OBJECT, "period, as_of, processes and cities with their figures"), **_errors(400, 401, 403)},
            [_query("from", {"type": "string", "format": "date"}, "first day (Berlin), default 1 January"),
             _query("to", {"type": "string", "format": "date"}, "last day (Berlin), default today")],
            description="Token of a team lead or an admin.")},
        "/api/v1/process-models": {
            "get": _operation("The shared process models and their versions (role designer or admin)",
                              {"200": _json(_OBJECT, "models and versions"), **_errors(401, 403)}),
            "post": {**_operation(
                "Upload models (role designer or admin): multipart parts 'files' (.bpmn, .dmn, forms) or one zip",
                {"201": _json(_OBJECT, "versions made"), "200": _json(_OBJECT, "nothing was new"),
                 "413": {"description": "over a size limit"},
                 "422": _json({"type": "object", "properties": {"errors": {"type": "array", "items": _PROBLEM}}},
                              "problems with file, line, column and element; nothing stored"),
                 **_errors(400, 401, 403)}),
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "properties": {"files": {"type": "array",
                                                               "items": {"type": "string", "format": "binary"}}}}}}}},
        },
        "/api/v1/fitconnect/callback": {"post": _operation(
            "FIT-Connect callback: new submissions to pick up (headers callback-timestamp and "
            "callback-authentication: HMAC-SHA512)", {"202": _json(_OBJECT, "pickup scheduled"), **_errors(400, 401)},
            body=_OBJECT, public=True)},
    }


PROCESS_ID = _path_param("process_id", {"type": "string"})
DESIGNERS = "Token of a designer or an admin (web.versions)."
ADMINS = "Token of an admin (admins act on every tenant's cases)."
_MOVE_BODY = {"type": "object", "required": ["from", "to"],
              "properties": {"from": {"type": "integer"}, "to": {"type": "integer"},
                             "cases": {"type": "array", "items": {"type": "integer"}}}}


def _version_paths():
    """Versions, diff, moving cases; suspend, resume, terminate (web.versions, engine.versions/moves/suspension)."""
    version = _path_param("version", {"type": "integer"})
    state = {"200": _json({"type": "object", "properties": {"case_id": {"type": "integer"},
                                                             "state": {"type": "string"}}}, "the case's new state"),
             **_errors(401, 403, 404, 409, 422)}
    reason = {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}
    move = {"200": _json(_OBJECT, "per case: can_move/moved, reasons, notes"), **_errors(401, 403, 404, 422)}
    return {
        "/api/v1/process-models/{process_id}/versions": {"get": _operation(
            "Versions of a process with case counts and the tenants' services bound to it",
            {"200": _json(_OBJECT, "versions and bindings"), **_errors(401, 403, 404)}, [PROCESS_ID],
            description=DESIGNERS)},
        "/api/v1/process-models/{process_id}/versions/{version}": {"get": _operation(
            "One version: bindings, cases (open by state and tenant), elements, bpmn_url",
            {"200": _json(_OBJECT, "the version"), **_errors(401, 403, 404)}, [PROCESS_ID, version],
            description=DESIGNERS)},
        "/api/v1/process-models/{process_id}/versions/{version}/bpmn": {"get": _operation(
            "The BPMN XML the version was deployed from",
            {"200": {"description": "BPMN 2.0 XML", "content": {"application/xml": {"schema": {"type": "string"}}}},
             **_errors(401, 403, 404)}, [PROCESS_ID, version], description=DESIGNERS)},
        "/api/v1/process-models/{process_id}/versions/{a}/diff/{b}": {"get": _operation(
            "Elements added, removed and changed (type, name, attributes, content) from version a to b, by id",
            {"200": _json(_OBJECT, "added, removed, changed, unchanged"), **_errors(401, 403, 404)},
            [PROCESS_ID, _path_param("a", {"type": "integer"}), _path_param("b", {"type": "integer"})],
            description=DESIGNERS)},
        "/api/v1/process-models/{process_id}/migrations/preview": {"post": _operation(
            "Per open case of version 'from': can it move to the later version 'to', and if not why (changes nothing)",
            move, [PROCESS_ID], body=_MOVE_BODY, description=ADMINS)},
        "/api/v1/process-models/{process_id}/migrations": {"post": _operation(
            "Move the open cases of version 'from' that can move to version 'to' (audited per case: case_moved)",
            move, [PROCESS_ID], body=_MOVE_BODY, description=ADMINS)},
        "/api/v1/cases/{case_id}/suspend": {"post": _operation(
            "Suspend a case: it does not advance until resumed (audited: case_suspended)", state, [CASE_ID],
            body=reason, description=ADMINS)},
        "/api/v1/cases/{case_id}/resume": {"post": _operation(
            "Resume a suspended case (audited: case_resumed)", state, [CASE_ID], body=reason, description=ADMINS)},
        "/api/v1/cases/{case_id}/terminate": {"post": _operation(
            "Terminate a case: open tasks, timers and jobs cancelled, closed as terminated and filed in the E-Akte "
            "(audited: case_terminated)", state, [CASE_ID], body=reason, description=ADMINS)},
    }


def openapi_document(app=None):
    """The OpenAPI 3.0 document of the API as a dict."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "ozgflow API", "version": VERSION,
                 "description": "Inbox, tasks, cases and documents of the ozgflow back office. Answers are JSON; "
                                "errors are {\"error\": …}. Anything of another tenant answers 404."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**_paths(), **_version_paths()},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token from 'ozgflow users token NAME'"}},
            "schemas": {"Task": _TASK, "Case": _CASE, "Error": _ERROR},
            "responses": {f"E{c}": _json({"$ref": "#/components/schemas/Error"}, t) for c, t in _TEXTS.items()},
        },
    }

