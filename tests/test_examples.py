"""Every shipped model runs its example cases end to end, stored and restored at every wait state."""

import json

import pytest
from conftest import ROOT

from engine.deploy import bundles_from_paths, deploy
from engine.examples import run_example

EXAMPLES = sorted((ROOT / "processes").glob("*/tests/*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in EXAMPLES])
def test_example_case(rt, path):
    deploy(rt, bundles_from_paths([ROOT / "processes"]))
    example = json.loads(path.read_text(encoding="utf-8"))
    case = run_example(rt, path.parent.parent.name, example, name=path.name)
    assert case["state"] == example["expect"]["state"]
    assert [h["action"] for h in case["history"]].count("task_completed") == len(example["steps"])
