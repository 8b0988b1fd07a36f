"""Versions of the shared process models: what each one is, whom it serves, what runs on it, what changed.

* ``version_info`` — one version: name, dialect, who uploaded it, whether new cases start on it, the
  tenants' services bound to its process (tenant + LeiKa + name; a shared binding is "all cities"), how many
  cases run on it (open ones by state and by tenant, and closed ones), its elements;
* ``version_bpmn`` — the BPMN XML the version was deployed from (for the bpmn-js viewer);
* ``diff_versions`` — elements added, removed and changed between two versions, by element id. An element
  is *changed* when its type, its name, one of its attributes (but its id) or its content differs —
  conditions, scripts, timer expressions, extension elements (properties, candidate groups, forms …). Child
  elements with an id of their own (a subprocess's tasks, event definitions) are compared on their own; the
  ``incoming``/``outgoing`` references are left out (the sequence flows say the same and are compared
  themselves), and so is the diagram (BPMNDI): moving a shape is no change of the process.

Bindings name processes, not versions: new cases start on the newest executable version
(``starts_new_cases``); older versions keep serving the cases that run on them.
"""

from sqlalchemy import func, select

from .errors import NotFound
from .inbox import model_xml
from .models import BPMN_NS, local
from .safexml import parse_xml
from .schema import Case, ProcessVersion

OPEN_STATES = ("running", "waiting", "error", "suspended")
SKIP_CHILDREN = {"incoming", "outgoing"}


def get_version(rt, process_id, version):
    """The process_version row (as a dict, spec excluded) of ``process_id`` version ``version``, or NotFound."""
    pv = ProcessVersion.__table__
    with rt.reader.connect() as conn:
        row = conn.execute(select(pv.c.id, pv.c.process_id, pv.c.version, pv.c.name, pv.c.dialect, pv.c.executable,
                                  pv.c.created_at, pv.c.created_by, pv.c.content_hash)
                           .where(pv.c.process_id == process_id, pv.c.version == int(version))).mappings().first()
        if row is None:
            raise NotFound(f"process {process_id!r} has no version {version}")
        return dict(row)


def newest_executable(rt, process_id):
    pv = ProcessVersion.__table__
    with rt.reader.connect() as conn:
        return conn.execute(select(func.max(pv.c.version)).where(pv.c.process_id == process_id,
                                                                 pv.c.executable.is_(True))).scalar()


def bindings_for(rt, process_id):
    """The tenants' services bound to ``process_id``: [{"tenant", "tenant_name", "leika", "name", "shared"}]."""
    found = []
    for b in rt.tenants.bindings:
        if b.process != process_id:
            continue
        tenant = rt.tenants.tenants.get(b.tenant) if b.tenant else None
        found.append({"tenant": b.tenant, "tenant_name": tenant.name if tenant else "alle Kommunen",
                      "leika": b.leika, "name": b.name, "shared": b.tenant is None})
    return sorted(found, key=lambda b: (not b["shared"], b["tenant"] or "", b["leika"]))


def case_counts(rt, version_ids):
    """{version_id: {"open": n, "closed": n, "by_state": {...}, "by_tenant": {...}}} of cases on the versions."""
    c = Case.__table__
    counts = {vid: {"open": 0, "closed": 0, "by_state": {}, "by_tenant": {}} for vid in version_ids}
    if not version_ids:
        return counts
    with rt.reader.connect() as conn:
        rows = conn.execute(select(c.c.version_id, c.c.state, c.c.tenant, func.count())
                            .where(c.c.version_id.in_(list(version_ids)))
                            .group_by(c.c.version_id, c.c.state, c.c.tenant)).all()
    for vid, state, tenant, n in rows:
        entry = counts[vid]
        entry["by_state"][state] = entry["by_state"].get(state, 0) + n
        if state in OPEN_STATES:
            entry["open"] += n
            entry["by_tenant"][tenant] = entry["by_tenant"].get(tenant, 0) + n
        else:
            entry["closed"] += n
    return counts


def version_info(rt, process_id, version):
    """Everything the version page shows about one version (see the module doc)."""
    row = get_version(rt, process_id, version)
    newest = newest_executable(rt, process_id)
    info = {k: row[k] for k in ("process_id", "version", "name", "dialect", "executable", "created_by")}
    info["created_at"] = row["created_at"].isoformat() if row["created_at"] else None
    info["starts_new_cases"] = bool(row["executable"]) and row["version"] == newest
    info["bindings"] = bindings_for(rt, process_id)
    info["cases"] = case_counts(rt, [row["id"]])[row["id"]]
    try:
        info["elements"] = [{"id": k, **v} for k, v in sorted(elements_of(version_bpmn(rt, process_id, version),
                                                                          process_id).items())
                            if v["type"] != "sequenceFlow"]
    except NotFound:
        info["elements"] = []
    return info


def list_versions_detailed(rt, process_id):
    """Every version of one process, newest first, each with its case counts."""
    pv = ProcessVersion.__table__
    with rt.reader.connect() as conn:
        rows = conn.execute(select(pv.c.id, pv.c.version, pv.c.name, pv.c.executable, pv.c.created_at,
                                   pv.c.created_by).where(pv.c.process_id == process_id)
                            .order_by(pv.c.version.desc())).mappings().all()
    if not rows:
        raise NotFound(f"no process {process_id!r} is deployed")
    counts = case_counts(rt, [r["id"] for r in rows])
    newest = max((r["version"] for r in rows if r["executable"]), default=None)
    return [{"version": r["version"], "name": r["name"], "executable": r["executable"],
             "created_at": r["created_at"].isoformat() if r["created_at"] else None, "created_by": r["created_by"],
             "starts_new_cases": r["version"] == newest, "cases": counts[r["id"]]} for r in rows]


def version_bpmn(rt, process_id, version):
    """The BPMN file (bytes) the version of ``process_id`` was deployed from."""
    return model_xml(rt, get_version(rt, process_id, version)["id"], process_id)


# --- diff ----------------------------------------------------------------------------------------------------


def _process_root(xml, process_id):
    tree = parse_xml(xml, f"{process_id}.bpmn", max(len(xml), 1))  # stored files passed the upload limit
    found = tree.getroot().xpath("//bpmn:process[@id=$pid]", namespaces={"bpmn": BPMN_NS}, pid=process_id)
    return found[0] if found else tree.getroot()


def _qname(node, key):
    """``camunda:candidateGroups`` for a namespaced attribute, as a designer reads it in the file."""
    if not key.startswith("{"):
        return key
    ns, name = key[1:].split("}", 1)
    prefix = next((p for p, uri in (node.nsmap or {}).items() if uri == ns and p), None)
    return f"{prefix}:{name}" if prefix else name


def _render(node):
    """An element as a designer reads it in the file — prefixed names, attributes sorted, no namespace
    declarations, whitespace collapsed — so equal content compares equal and a change is readable."""
    name = f"{node.prefix}:{local(node.tag)}" if node.prefix else local(node.tag)
    attrs = "".join(f' {_qname(node, k)}="{v}"' for k, v in sorted(node.attrib.items()))
    text = " ".join((node.text or "").split())
    inner = text + "".join(_render(c) + (" ".join((c.tail or "").split())) for c in node
                           if isinstance(c.tag, str))
    return f"<{name}{attrs}>{inner}</{name}>" if inner else f"<{name}{attrs}/>"


def _content(node):
    """The content of an element apart from children that have an id of their own (compared on their own)."""
    return [_render(child) for child in node
            if isinstance(child.tag, str) and not child.get("id") and local(child.tag) not in SKIP_CHILDREN]


def elements_of(xml, process_id):
    """{element id: {"type", "name", "attributes", "content"}} of every element with an id in the process."""
    root = _process_root(xml, process_id)
    found = {}
    for node in root.iter():
        if not isinstance(node.tag, str) or node is root or not node.get("id"):
            continue
        attributes = {_qname(node, k): v for k, v in node.attrib.items() if k not in ("id", "name")}
        text = " ".join((node.text or "").split())
        found[node.get("id")] = {"type": local(node.tag), "name": node.get("name"), "attributes": attributes,
                                 "content": ([text] if text else []) + _content(node)}
    return found


def _changes(old, new):
    """What differs between two versions of one element: [{"what", "old", "new"}]."""
    changes = []
    if old["type"] != new["type"]:
        changes.append({"what": "type", "old": old["type"], "new": new["type"]})
    if old["name"] != new["name"]:
        changes.append({"what": "name", "old": old["name"], "new": new["name"]})
    for key in sorted(set(old["attributes"]) | set(new["attributes"])):
        if old["attributes"].get(key) != new["attributes"].get(key):
            changes.append({"what": f"attribute {key}", "old": old["attributes"].get(key),
                            "new": new["attributes"].get(key)})
    if old["content"] != new["content"]:
        changes.append({"what": "content", "old": "\n".join(old["content"]), "new": "\n".join(new["content"])})
    return changes


def _summary(element_id, e):
    return {"id": element_id, "type": e["type"], "name": e["name"]}


def diff_versions(rt, process_id, a, b):
    """Elements added, removed and changed from version ``a`` to version ``b`` of ``process_id``."""
    old = elements_of(version_bpmn(rt, process_id, a), process_id)
    new = elements_of(version_bpmn(rt, process_id, b), process_id)
    changed = []
    for element_id in sorted(set(old) & set(new)):
        changes = _changes(old[element_id], new[element_id])
        if changes:
            changed.append({**_summary(element_id, new[element_id]), "changes": changes})
    return {"process_id": process_id, "from": int(a), "to": int(b),
            "added": [_summary(i, new[i]) for i in sorted(set(new) - set(old))],
            "removed": [_summary(i, old[i]) for i in sorted(set(old) - set(new))],
            "changed": changed, "unchanged": len(set(old) & set(new)) - len(changed)}


def counts_by_version(rt):
    """{(process_id, version): {"open": n, "closed": n}} over every deployed version (for the model list)."""
    c, pv = Case.__table__, ProcessVersion.__table__
    found = {}
    with rt.reader.connect() as conn:
        rows = conn.execute(select(pv.c.process_id, pv.c.version, c.c.state, func.count())
                            .join(c, c.c.version_id == pv.c.id)
                            .group_by(pv.c.process_id, pv.c.version, c.c.state)).all()
    for process_id, version, state, n in rows:
        entry = found.setdefault((process_id, version), {"open": 0, "closed": 0})
        entry["open" if state in OPEN_STATES else "closed"] += n
    return found
