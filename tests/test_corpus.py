"""The reference corpus (../shared/corpus: BPMN MIWG and Camunda examples): every file either deploys or is
refused with a reason that names file, line or element — never a crash, never more than seconds. The outcome
per file is written to docs/conformance.md."""

import time

import pytest
from conftest import ROOT, SHARED
from corpus_connectors import FAKES, fake_services
from test_upload_page import designer, upload
from test_web_fixtures import *  # noqa: F403

from engine.cases import start_case
from engine.deploy import deploy
from engine.errors import DeployError, NotFound
from engine.models import Bundle, compile_bundle

CORPUS = SHARED / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in (".bpmn", ".dmn"))
REPORT = ROOT / "docs" / "conformance.md"
SECONDS = 5


def bundle_of(path):
    """One corpus file with the Camunda Forms (.form) its example project ships, as a designer uploads it."""
    root = next((p for p in path.parents if p.name == "src"), None)
    forms = {f.name: f.read_bytes() for f in sorted(root.rglob("*.form"))} if root else {}
    return Bundle({path.name: path.read_bytes(), **forms}, source=path.name)


def outcome(path):
    """("deploys" | "view only" | "refused", reason) for one corpus file, compiled on its own (with its
    project's forms), the fake connectors of tests/corpus_connectors.py registered."""
    try:
        compiled = compile_bundle(bundle_of(path), services=fake_services())
    except DeployError as exc:
        assert exc.problems and all(p.file and p.message for p in exc.problems), exc.problems
        return "refused", "; ".join(_where(p) + p.message for p in exc.problems)
    names = ", ".join(c.process_id for c in compiled)
    if all(c.executable for c in compiled):
        return "deploys", f"executable: {names}"
    return "view only", f"not executable (isExecutable=\"false\"), kept for viewing: {names}"


def _where(problem):
    line = f"line {problem.line}" + (f":{problem.column}" if problem.column else "") if problem.line else ""
    parts = [line, f"[{problem.element}]" if problem.element else ""]
    return " ".join(p for p in parts if p) + (": " if any(parts) else "")


def test_the_corpus_is_there():
    assert len(FILES) > 50, f"expected the corpus under {CORPUS}"


def test_every_corpus_file_deploys_or_is_refused_with_a_reason():
    rows, counts = [], {"deploys": 0, "view only": 0, "refused": 0}
    for path in FILES:
        started = time.monotonic()
        result, reason = outcome(path)  # anything but DeployError fails the test: a crash
        assert time.monotonic() - started < SECONDS, f"{path} took too long"
        counts[result] += 1
        rows.append(f"| `{path.relative_to(CORPUS).as_posix()}` | {result} | {_cell(reason)} |")
    REPORT.write_text(_report(rows, counts), encoding="utf-8")


def _cell(text):
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= 600 else text[:600] + " …"


def _report(rows, counts):
    return (
        "# Conformance: the reference corpus\n\n"
        "Written by `tests/test_corpus.py` — do not edit by hand. Every `.bpmn` and `.dmn` file of "
        "`../shared/corpus/miwg/` (BPMN MIWG test suite) and `../shared/corpus/camunda/` (Camunda 7 / Operaton "
        "examples) is compiled on its own, the way `POST /api/v1/process-models` and `ozgflow deploy` compile "
        "an upload, together with the Camunda Forms (`.form`) its example project ships. Fake connectors "
        "(`tests/corpus_connectors.py`) are registered for the Java delegates and external-task topics the "
        "Camunda models name: " + ", ".join(f"`{n}`" for n in sorted(FAKES)) + "; without a connector of "
        "that name an upload is refused, naming it. The executable Camunda examples that deploy run end to end "
        "in `tests/test_camunda_corpus_run.py`.\n\n"
        "- **deploys**: becomes a version that can be started;\n"
        "- **view only**: no process is marked executable (`isExecutable=\"false\"`); stored as a version to be "
        "viewed, refused by start;\n"
        "- **refused**: nothing stored; the reason names line and element as the designer sees them.\n\n"
        f"{len(rows)} files: {counts['deploys']} deploy, {counts['view only']} view only, "
        f"{counts['refused']} refused.\n\n"
        "| file | outcome | reason |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )


@pytest.mark.parametrize("name", ["miwg/Reference/A.1.0.bpmn", "miwg/Reference/C.4.0.bpmn"])
def test_a_view_only_model_is_stored_but_cannot_be_started(rt, name):
    path = CORPUS / name
    results = deploy(rt, [Bundle({path.name: path.read_bytes()})], actor="dora")
    assert results and all(r["new"] for r in results)
    with pytest.raises(NotFound, match="viewing only"):
        start_case(rt, results[0]["process_id"], "marburg")


def test_every_deployable_corpus_file_is_stored(rt):
    rt.services.update(fake_services())
    deployable = [p for p in FILES if outcome(p)[0] != "refused"]
    for path in deployable:
        assert deploy(rt, [bundle_of(path)], actor="corpus")


def test_without_its_connector_a_camunda_model_is_refused_naming_it():
    path = CORPUS / "camunda/camunda-bpm-examples/startevent/message-start/src/main/resources"
    path = path / "instantiating_process.bpmn"
    with pytest.raises(DeployError) as info:
        compile_bundle(bundle_of(path))  # the default registry: no fake for the Java delegate
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.element) == ("instantiating_process.bpmn", 7, "ServiceTask_1")
    assert "'InstantiateProcessByMessageDelegate'" in problem.message


def test_view_only_model_is_listed_as_such_on_the_page(client, web_rt):
    designer(client, web_rt)
    path = CORPUS / "miwg" / "Reference" / "A.1.0.bpmn"
    resp = upload(client, [(path.name, path.read_bytes())])
    assert resp.status_code == 200
    assert "nur zur Ansicht" in resp.get_data(as_text=True)
