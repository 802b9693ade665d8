"""One shape for "train a model" (example-get-started's train() / main()): the library's training
functions return the model, its log, metrics and predictions and write nothing; the stages read
params and write every output. Run on the tiny fixtures (rec_tiny) in a temporary working directory."""
from __future__ import annotations

from pathlib import Path

import pytest

import rec_tiny
import stages.rdrec
from params_base import section
from pipeline import layout
from pipeline.experts.params import ExpertTrainParams
from pipeline.experts.training import train_cluster_expert
from pipeline.params import load_section
from pipeline.rdrec.params import RDRecParams
from pipeline.ranking.params import RankingParams
from pipeline.rdrec.student import Backbone, StudentInputs, train_student_variant
from pipeline.rec.inputs import rec_inputs
from pipeline.rec.params import RecParams
from pipeline.rec.recipe import build_variant_model, train_variant
from pipeline.rec.recommender import Recommender, variant_data
from pipeline.rec.variants import get_variant
from stages.rec_stage import run_rec_stage
from test_rdrec import student_params, write_rationales

# what each stage wrote before the library stopped writing (the same names now)
MODEL_FILES = {"adapter/README.md", "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
               "model.json", "train_log.json"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shape")
    rec_tiny.write_tiny_model(root / "tiny")
    rec_tiny.write_tiny_artifacts(root)
    write_rationales(root)
    params = rec_tiny.tiny_params(root / "tiny")
    params["rdrec"] = student_params()
    rec_tiny.write_params(root, params)
    return root


@pytest.fixture()
def cwd(project, monkeypatch) -> Path:
    monkeypatch.chdir(project)
    return project


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root`: its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def written_by(root: Path, run) -> set[str]:
    """Files `run()` added or changed under `root`."""
    before = files(root)
    run()
    return {path for path, stat in files(root).items() if before.get(path) != stat}


def test_train_variant_returns_its_outputs_and_writes_nothing(cwd):
    spec = get_variant("tallrec")
    params = load_section("rec", RecParams)
    inputs = rec_inputs(spec)
    result = {}
    assert written_by(cwd, lambda: result.update(trained=train_variant(spec, params, inputs, None))) == set()
    trained = result["trained"]
    assert len(trained.log["steps"]) == 2 and trained.metrics["variant"] == "tallrec"
    assert len(trained.predictions[trained.predictions["row"] >= 0]) == 18  # valid_small + test_small
    assert trained.recommender.name == "tallrec" and trained.recommender.precision == "float32"


def test_train_student_variant_writes_nothing(cwd):
    rec = load_section("rec", RecParams)
    cf_dir = layout.CF_SELECTED_DIR
    inputs = StudentInputs(layout.INTERACTIONS, layout.ITEMS, layout.TOPN_CANDIDATES, cf_dir / "user_vectors.parquet",
                           cf_dir / "item_vectors.parquet", None, layout.RATIONALES)
    backbone = Backbone(rec.backbone, rec.lora, rec.projector.expansion, rec.projector.match_embedding_norm,
                        rec.answer_logit, rec.threads, rec.device)
    params, result = load_section("rdrec", RDRecParams), {}

    def run():
        result["trained"] = train_student_variant("rdrec", params, backbone, inputs, load_section("ranking", RankingParams))

    assert written_by(cwd, run) == set()
    trained = result["trained"]
    assert set(trained.log["pool_packs"]) == {"rank", "next", "preference", "attributes"}
    assert (trained.predictions["row"] == -1).all() and len(trained.predictions) == trained.metrics["topn_candidates"]


def test_train_cluster_expert_writes_nothing(cwd):
    params = load_section("rec", RecParams)
    spec = get_variant("thinkrec_stage1")  # a fresh stage-1 model: LoRA in every layer, traces in its data
    data = variant_data(spec, traces=True)
    recommender = Recommender(spec.name, spec, build_variant_model(spec, params, data.vectors, None), data,
                              params.prompt, "float32")
    train = ExpertTrainParams(**section("experts.train", prompt="text", upper_layers=1, train_rows=6, batch_size=2,
                                        lr=0.01, weight_decay=0.0, warmup_steps=0, reasoning_share=0.5,
                                        dtype="float32", seed=3))
    result = {}

    def run():
        result["trained"] = train_cluster_expert(recommender, 0, {0, 1, 2}, train, params.packing, params.loss,
                                                 params.scoring)

    assert written_by(cwd, run) == set()
    trained = result["trained"]
    assert trained.description["train_rows"] == 6 and trained.metrics["loss_first"] == trained.log["steps"][0]["loss"]


def test_the_stages_write_the_same_files_as_before(cwd):
    assert written_by(cwd, lambda: run_rec_stage("tallrec")) == (
        {f"data/rec/tallrec/{name}" for name in MODEL_FILES}
        | {"data/predictions/tallrec.parquet", "metrics/tallrec_train.json",
           "data/ranking/tallrec.parquet", "data/ranking/tallrec_candidates.parquet"})
    assert written_by(cwd, lambda: stages.rdrec.main("rdrec_no_rationales")) == (
        {f"data/rdrec/rdrec_no_rationales/{name}" for name in MODEL_FILES | {"projector.pt"}}
        | {"data/predictions/rdrec_no_rationales.parquet", "metrics/rdrec_no_rationales_train.json",
           "data/ranking/rdrec_no_rationales.parquet"})
