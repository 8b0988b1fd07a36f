"""Decision tables at deploy: hit policies, one decision per parsed table, FEEL cells translated.

SpiffWorkflow 3.2.0 reads one decision per DMN file and runs hit policies UNIQUE (first match; uniqueness
is not checked) and COLLECT (lists of the outputs); any other policy falls back to "the first matching rule",
which is exactly FIRST. So UNIQUE, FIRST and COLLECT (without an aggregation) are accepted and the rest is
refused. A file with several decisions is split into one tree per decision; a decision that requires
another (a decision requirements graph) is refused.

Cells: files from Camunda Modeler (the upload's dialect is Camunda, or the DMN file uses Camunda's DMN
namespace) are FEEL and are translated by ``engine.feel``; other DMN files hold Python cells as before.
Every cell, translated or not, goes through ``engine.restricted.check_code``.
"""

import copy

from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS

from .errors import Problem
from .feel import SUPPORTED, FeelUnsupported, checkable, translate_input, translate_output
from .restricted import CodeViolation, check_code

CAMUNDA_DMN_NS = "http://camunda.org/schema/1.0/dmn"
HIT_POLICIES = ("UNIQUE", "FIRST", "COLLECT")
PYTHON_LANGUAGES = ("python", "py", "text/x-python")
DMN_SCHEMAS = set(SCHEMAS)  # the DMN versions SpiffWorkflow validates (exact namespaces)


def local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def is_feel(tree, dialect):
    root = tree.getroot()
    language = (root.get("expressionLanguage") or "").lower()
    if language in PYTHON_LANGUAGES:
        return False
    return dialect == "camunda" or CAMUNDA_DMN_NS in root.nsmap.values() or "feel" in language


def _children(node, name):
    return [c for c in node if local(c.tag) == name]


def check_dmn(path, tree, dialect, used=None):
    """Problems of one DMN file; FEEL cells are rewritten in place into the Python the engine runs.

    ``used``: the decision ids business rule tasks refer to; only those may not require other decisions.
    Cells are found the way SpiffWorkflow's DMNParser finds them (tags *ending* in ``text`` below tags ending in
    ``inputEntry``/``outputEntry``/``inputExpression``, wherever they are), so no evaluated text escapes."""
    root = tree.getroot()
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if local(root.tag) != "definitions" or namespace not in DMN_SCHEMAS:
        return [Problem(path, root.sourceline, root.get("id"),
                        f"not a DMN document of a version we read (namespace {namespace!r}; supported: DMN 1.1, "
                        "1.2, 1.3)")]
    problems = []
    for decision in (n for n in root.iter() if local(n.tag) == "decision"):
        problems.extend(_check_decision(path, decision, used))
    feel = is_feel(tree, dialect)
    for node in root.iter():
        if not isinstance(node.tag, str) or not node.tag.endswith("text") or node.getparent() is None:
            continue
        parent = node.getparent().tag if isinstance(node.getparent().tag, str) else ""
        if parent.endswith(("inputEntry", "outputEntry")):
            kind = "inputEntry" if parent.endswith("inputEntry") else "outputEntry"
            problems.extend(_check_cell(path, node, _cell_label(node, kind), kind, feel))
        elif parent.endswith("inputExpression"):
            problems.extend(_check_code(path, node, _decision_label(node), "input expression",
                                        (node.text or "").strip()))
    return problems


def _check_decision(path, decision, used):
    problems, label = [], f"decision {decision.get('id')!r}"
    for req in decision.iter():
        if local(req.tag) == "requiredDecision" and (used is None or decision.get("id") in used):
            problems.append(Problem(path, req.sourceline, decision.get("id"),
                                    f"{label} requires decision {(req.get('href') or '').lstrip('#')!r} (a "
                                    "decision requirements graph), which is not supported: evaluate the "
                                    "decisions in two business rule tasks one after the other"))
    tables = _children(decision, "decisionTable")
    if len(tables) != 1:
        problems.append(Problem(path, decision.sourceline, decision.get("id"),
                                f"{label}: only decisions with one decision table are supported "
                                "(no literal expressions)"))
    for table in tables:
        policy = (table.get("hitPolicy") or "UNIQUE").upper()
        if policy not in HIT_POLICIES or (policy == "COLLECT" and table.get("aggregation")):
            shown = policy + (f" {table.get('aggregation')}" if table.get("aggregation") else "")
            problems.append(Problem(path, table.sourceline, table.get("id"),
                                    f"{label}: hit policy {shown} is not supported (supported: UNIQUE, FIRST, "
                                    "COLLECT without aggregation)"))
    return problems


def _ancestor(node, name):
    while node is not None and not (isinstance(node.tag, str) and node.tag.endswith(name)):
        node = node.getparent()
    return node


def _decision_label(node):
    decision = _ancestor(node, "decision")
    return f"decision {decision.get('id')!r}" if decision is not None else "decision"


def _cell_label(node, kind):
    """"decision 'd', rule 2 (R2), input 1": the rule's number and the cell's column as the table shows them."""
    entry, rule = node.getparent(), _ancestor(node, "rule")
    label = _decision_label(node)
    if rule is None or rule.getparent() is None:
        return label
    rules = [r for r in rule.getparent() if isinstance(r.tag, str) and r.tag.endswith("rule")]
    entries = [e for e in rule if isinstance(e.tag, str) and e.tag.endswith(kind)]
    column = entries.index(entry) + 1 if entry in entries else "?"
    return (f"{label}, rule {rules.index(rule) + 1} ({rule.get('id')}), "
            f"{'input' if kind == 'inputEntry' else 'output'} {column}")


def _check_cell(path, node, cell, kind, feel):
    original = (node.text or "").strip()
    if not feel:
        if kind == "inputEntry" and original in ("", "-"):
            node.text = "-"
            return []
        return _check_code(path, node, cell, "cell", original, dmn_input=kind == "inputEntry") if original else []
    try:
        python = translate_input(original) if kind == "inputEntry" else translate_output(original)
    except FeelUnsupported as exc:
        return [Problem(path, node.sourceline, _element(node),
                        f"{cell}: FEEL {original!r} is outside the subset we run ({exc}); {SUPPORTED}")]
    node.text = "-" if python is None else python
    if python is None or python == "":
        return []
    return _check_code(path, node, cell, "cell", python, dmn_input=kind == "inputEntry", shown=original)


def _check_code(path, node, cell, what, code, dmn_input=False, shown=None):
    if not code:
        return []
    try:
        check_code(checkable(code) if dmn_input else code, "eval")
    except CodeViolation as exc:
        if dmn_input and shown is None and _checks("dmninputexpr " + checkable(code)):
            return []  # a Python cell such as "> 5": SpiffWorkflow puts the input value in front
        return [Problem(path, node.sourceline, _element(node), f"{cell}: {what} {shown or code!r} refused: {exc}")]
    return []


def _checks(code):
    try:
        check_code(code, "eval")
    except CodeViolation:
        return False
    return True


def _element(node):
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return None


def split_decisions(path, tree):
    """One root per decision (SpiffWorkflow reads the first decision of a file only)."""
    root = tree.getroot()
    decisions = _children(root, "decision")
    if len(decisions) <= 1:
        return [root]
    roots = []
    for keep in range(len(decisions)):
        clone = copy.deepcopy(root)
        for i, d in enumerate(_children(clone, "decision")):
            if i != keep:
                clone.remove(d)
        roots.append(clone)
    return roots
