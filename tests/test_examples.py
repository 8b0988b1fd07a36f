"""Every shipped model runs its example cases end to end, stored and restored at every wait state
(engine.examples: task, message, advance and jobs steps on an injected clock), on SQLite and PostgreSQL."""

import json

import pytest
from conftest import ROOT

from engine.deploy import bundles_from_paths, deploy
from engine.examples import ExampleFailed, run_example

EXAMPLES = sorted((ROOT / "processes").glob("*/tests/*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in EXAMPLES])
def test_example_case(rt, path):
    deploy(rt, bundles_from_paths([ROOT / "processes"]))
    example = json.loads(path.read_text(encoding="utf-8"))
    case = run_example(rt, path.parent.parent.name, example, name=path.name)
    assert case["state"] == example["expect"]["state"]
    done = [s for s in example["steps"] if "task" in s and not s.get("expect_error")]
    assert [h["action"] for h in case["history"]].count("task_completed") == len(done)
    if case["state"] == "completed" and path.parent.parent.name in SHARED_MODELS:
        _filed_in_the_eakte(rt, case)


def _filed_in_the_eakte(rt, case):
    """A closed case of a shared model goes to the E-Akte: an XSD-valid package with its letters, retained as the
    model says (the export job runs a minute after the close; the runtime's clock is the wall clock here)."""
    from sqlalchemy import select

    from engine.jobs import Worker
    from engine.schema import EfileExport

    Worker(rt).run_due()
    with rt.reader.connect() as conn:
        export = conn.execute(select(EfileExport.documents, EfileExport.retention_years)
                              .where(EfileExport.case_id == case["id"])).one()
    names = [d["name"] for d in json.loads(export.documents)]
    assert len(names) >= len(case["data"].get("letters") or {}), names
    years = {"hundesteuer-anmeldung": 10, "gewerbeanmeldung": 10, "bewohnerparkausweis": 3}
    assert export.retention_years == years.get(case["process_id"], 10)


SHARED_MODELS = ("hundesteuer-anmeldung", "gewerbeanmeldung", "bewohnerparkausweis", "digitaler-briefkasten")


def test_every_model_has_examples_for_several_cities():
    for folder in (ROOT / "processes" / name for name in SHARED_MODELS):
        tenants = {json.loads(p.read_text(encoding="utf-8"))["tenant"] for p in (folder / "tests").glob("*.json")}
        assert len(tenants) >= 2, f"{folder.name}: examples for one city only ({tenants})"


def test_a_wrong_expectation_fails_with_the_step_named(rt):
    deploy(rt, bundles_from_paths([ROOT / "processes"]))
    example = json.loads((ROOT / "processes" / "hundesteuer-anmeldung" / "tests" / "offen-limburg.json").read_text())
    example["steps"] = [{"task": "Task_Festsetzen", "user": "x", "data": {}}]
    with pytest.raises(ExampleFailed, match="step 1: task Task_Festsetzen is not open"):
        run_example(rt, "hundesteuer-anmeldung", example, name="wrong")
    example["steps"] = []
    example["expect"]["data"] = {"steuer_berechnet": 1.0}
    with pytest.raises(ExampleFailed, match="steuer_berechnet is 84.0, expected 1.0"):
        run_example(rt, "hundesteuer-anmeldung", example, name="wrong")
