"""The model registry is the one list of models: dvc.yaml is generated from it (and current), and a
model added to it (a second CoLLM-style seed) reaches every consumer."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline import layout, registry
from pipeline.cli import stage_of
from pipeline.rec.params import RecParams
from pipeline.rec.variants import get_variant
from stages import dvc_yaml

ROOT = Path(__file__).resolve().parents[1]
SECOND_SEED = registry.ModelEntry("collm_seed1", "llm", "collm_seed1", starts_from="tallrec", inputs=("cf",),
                                  compared_with=("collm",), explainable=True)


def project_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_dvc_yaml_is_current(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert dvc_yaml.main(["--check"]) == 0, "dvc.yaml is stale: python -m stages.dvc_yaml --write"


def test_every_stage_the_registry_names_is_in_dvc_yaml():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for entry in registry.models():
        assert entry.stage.split("@")[0] in stages, entry.name
    for entry in registry.MODELS:
        if not entry.in_default_run:
            assert entry.stage not in stages, f"{entry.name} is outside the default run"


@pytest.fixture
def second_seed(monkeypatch):
    """The registry with one more entry, a second seed of CoLLM-style, and its params."""
    monkeypatch.setattr(registry, "MODELS", (*registry.MODELS, SECOND_SEED))
    params = project_params()
    params["rec"]["overrides"] = {"collm_seed1": {"seed": 1}}
    return params


def test_a_new_registry_entry_reaches_every_consumer(second_seed, tmp_path):
    params = second_seed
    # the LLM variant specs and the training params it trains with
    spec = get_variant("collm_seed1")
    assert (spec.stage, spec.lora_from, spec.keywords, spec.traces, spec.reported) == (2, "tallrec", False, False, True)
    rec = RecParams.model_validate(params["rec"])
    assert rec.training("collm_seed1", 2).seed == 1
    assert rec.training("collm", 2).seed == params["rec"]["stage2"]["seed"] != 1
    # evaluate's models and comparisons, the results table's rows
    assert registry.evaluated()[-1] == "collm_seed1"
    assert registry.comparisons()["collm_seed1"] == ["collm"]
    # dvc.yaml: its own stage, evaluate's deps and metrics, explain's deps, the ROC plot
    pipeline = yaml.safe_load(dvc_yaml.render(params))
    stage = pipeline["stages"]["collm_seed1"]
    assert stage["cmd"] == "python -m stages.train_rec collm_seed1"
    assert {"data/rec/tallrec", "data/cf_selected"} <= set(stage["deps"])
    assert stage["outs"][:4] == ["data/rec/collm_seed1", "data/predictions/collm_seed1.parquet",
                                 "data/ranking/collm_seed1.parquet", "data/ranking/collm_seed1_candidates.parquet"]
    assert "rec.overrides.collm_seed1" in stage["params"] and "rec.projector" in stage["params"]
    assert "rec.overrides.collm" not in pipeline["stages"]["collm"]["params"]
    evaluate = pipeline["stages"]["evaluate"]
    assert "data/predictions/collm_seed1.parquet" in evaluate["deps"]
    assert {"metrics/collm_seed1.json": {"cache": False}} in evaluate["metrics"]
    assert "data/rec/collm_seed1" in pipeline["stages"]["explain"]["deps"]
    assert "plots/roc/collm_seed1.json" in pipeline["plots"][0]["roc"]["y"]
    # the CLI's "run this stage first"
    (tmp_path / "dvc.yaml").write_text(dvc_yaml.render(params))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    outputs = stage_of.stage_outputs(tmp_path / "dvc.yaml", tmp_path / "params.yaml")
    assert stage_of.producing_stage(layout.rec_dir("collm_seed1") / "adapter_config.json", outputs) == "collm_seed1"
    assert stage_of.producing_stage(layout.predictions("collm_seed1"), outputs) == "collm_seed1"


def test_the_run_this_first_map_names_the_writing_stage():
    outputs = stage_of.stage_outputs(ROOT / "dvc.yaml", ROOT / "params.yaml")
    cases = {
        layout.ITEMS: "ingest",
        layout.predictions("sasrec"): "cf@sasrec",
        layout.cf_dir("mf") / "user_vectors.parquet": "cf@mf",
        layout.CF_SELECTED_DIR / "model.pt": "cf_select",
        layout.predictions("popularity"): "baselines",
        layout.predictions("thinkrec"): "thinkrec",
        layout.rec_dir("thinkrec_stage1"): "thinkrec_stage1",
        layout.GATE_DIR / "gate.json": "gate",
        layout.expert_dir(1): "expert@1",
        layout.GOLD_TRACES: "traces",
        Path(project_params()["rec"]["backbone"]) / "config.json": "prepare_model",
        layout.metrics("thinkrec"): "evaluate",
    }
    for path, stage in cases.items():
        assert stage_of.producing_stage(path, outputs) == stage, path
    assert stage_of.producing_stage(Path("data/nowhere.parquet"), outputs) == ""


@pytest.mark.parametrize("change, message", [
    (lambda models: (*models, models[0]), "listed twice"),
    (lambda models: (*models, dataclasses.replace(SECOND_SEED, starts_from="talrec")), "unknown model 'talrec'"),
    (lambda models: (*models, dataclasses.replace(SECOND_SEED, compared_with=("thinkrec_no_keywords",))),
     "outside the default run"),
    (lambda models: (*models, dataclasses.replace(SECOND_SEED, inputs=("reviews",))), "unknown inputs"),
    (lambda models: (*models, dataclasses.replace(SECOND_SEED, evaluated=False)), "needs an evaluated model"),
])
def test_an_inconsistent_registry_is_an_error(change, message):
    with pytest.raises(ValueError, match=message):
        registry.check(change(registry.MODELS))


def test_rec_overrides_name_training_fields_only():
    params = project_params()["rec"]
    with pytest.raises(ValueError, match=r"overrides.collm_seed1: \['sed'\]"):
        RecParams.model_validate({**params, "overrides": {"collm_seed1": {"sed": 1}}})
    with pytest.raises(ValueError, match="seed"):
        RecParams.model_validate({**params, "overrides": {"collm_seed1": {"seed": "one"}}})
