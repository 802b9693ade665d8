"""scripts/pair_against.py: every evaluated model paired with one other, as evaluate pairs them,
printed and nothing written (on test_evaluate.py's tiny project and models)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

from pipeline.report.verdict import interval
from test_evaluate import MODELS, ROOT, metrics_files, project, run  # noqa: F401 (project: the fixture)

SCRIPT = ROOT / "scripts" / "pair_against.py"
# as registry_swap.LAUNCH, for a script file rather than a module
LAUNCH = ("import pickle, runpy, sys; from pipeline import registry; "
          "registry.MODELS = pickle.loads(bytes.fromhex(sys.argv[1])); registry.check(registry.MODELS); "
          "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")
METRICS = ["auc", "full_hr@5"]  # a comparison holds the headline metrics (test_evaluate.PARAMS)


def pair_against(directory, reference: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", LAUNCH, pickle.dumps(MODELS).hex(), str(SCRIPT), reference,
                           "--metrics", *METRICS], cwd=directory, env=env, capture_output=True, text=True)


def test_every_model_is_paired_with_the_reference_as_evaluate_pairs_it_and_nothing_is_written(project):
    directory, _ = project
    assert run(directory, "stages.evaluate").returncode == 0
    before = metrics_files(directory)
    result = pair_against(directory, "llm_ablated")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    # every evaluated model but the reference, the ones the registry does not pair with it included
    assert set(lines) == {"cfgood - llm_ablated", "cfbad - llm_ablated", "llm - llm_ablated"}
    # the pair the registry has (llm vs its ablation): the same interval evaluate wrote
    written = json.loads((directory / "metrics/detail/llm.json").read_text())["vs_llm_ablated"]
    assert lines["llm - llm_ablated"] == "; ".join(
        f"{metric} {interval(written, metric, signed=True)}" for metric in METRICS)
    assert "full_hr@5 +1.000 [+1.000, +1.000]" in lines["llm - llm_ablated"]  # llm's lists hold the targets, the ablation's miss
    assert metrics_files(directory) == before


def test_an_unknown_reference_is_refused(project):
    directory, _ = project
    assert run(directory, "stages.evaluate").returncode == 0
    result = pair_against(directory, "no_such_model")
    assert result.returncode == 2 and "'no_such_model' is not a model evaluate measures" in result.stderr
    assert "Traceback" not in result.stderr
