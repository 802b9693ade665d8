"""Hard rows from an LLM's mistakes, as the reference takes them: stage hard_scores scores every
train row with a trained recommender (`hard_scores.model`), and traces' hard selection, reading
that file, picks exactly the rows the model gets wrong. dvc.yaml lists the stage only while the key
is set; a model that trains on traces, or the key without `traces.hard_scores` naming the file, is
a one-line error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import rec_tiny
import stages.dvc_yaml
import stages.hard_scores
import stages.traces
from params_base import PARAMS_FILE
from pipeline import layout, schemas
from pipeline.artifacts import read_frame
from pipeline.errors import BadParams, run_stage
from pipeline.hard_scores import HARD_SCORES, check_scoring_model, check_traces_reads_them
from pipeline.params import load_section
from pipeline.profiles import dvc_yaml_sets, profile_sets
from pipeline.rec.params import RecParams
from pipeline.rec.recommender import load_recommender
from test_recommender_handle import write_saved_models

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    # a stage-2 model without traces (a random LoRA and projector)
    return write_saved_models(tmp_path_factory.mktemp("hard_scores"), {"collm": 3})


def write_params(root: Path, model: str | None, hard_scores: str | None, threshold: float | None = 0.0) -> dict:
    """params.yaml: the repo's, the tiny rec section, the hard rows' keys."""
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params.update(rec_tiny.tiny_params(root / "tiny"))
    params["hard_scores"] = {"model": model}
    params["traces"].update(hard_scores=hard_scores, score_threshold=threshold, count=1000)
    rec_tiny.write_params(root, params)
    return params


def test_the_stage_scores_every_train_row_and_traces_takes_exactly_its_mistakes(project, monkeypatch):
    monkeypatch.chdir(project)
    params = write_params(project, "collm", str(HARD_SCORES))
    stages.hard_scores.main()
    scored = read_frame(HARD_SCORES, schemas.PREDICTIONS)
    interactions = read_frame(layout.INTERACTIONS, schemas.INTERACTIONS)
    train = interactions[interactions["split"] == "train"].sort_values("row")
    assert scored["row"].tolist() == train["row"].tolist() == list(range(30))  # every train row, nothing else
    recommender = load_recommender("collm", RecParams.model_validate(params["rec"]))
    expected = recommender.score(recommender.encode(train), 4)
    np.testing.assert_array_equal(scored["score"].to_numpy(), expected.astype(np.float32))  # the model's own scores
    metrics = json.loads((project / stages.hard_scores.METRICS).read_text())
    wrong = (scored["score"].to_numpy() > 0.0).astype(int) != train["label"].to_numpy()
    assert (metrics["model"], metrics["rows"], metrics["wrong"]) == ("collm", 30, int(wrong.sum()))
    assert metrics["wrong_by_label"]["0"] + metrics["wrong_by_label"]["1"] == metrics["wrong"]
    assert 0.0 <= metrics["auc"] <= 1.0 and metrics["ingest"]  # stamped with the ingest it scored
    # traces reads the file: at a cut between the scores, the hard rows are the pool's mistakes there
    pool = train[train["history_items"].map(len) >= params["traces"]["min_history"]].merge(scored[["row", "score"]])
    cut = float(np.median(pool["score"]))
    write_params(project, "collm", str(HARD_SCORES), threshold=cut)
    rows, info = stages.traces.choose_rows(load_section("traces", stages.traces.TraceParams), interactions)
    mistakes = pool[(pool["score"] > cut).astype(int) != pool["label"]]
    assert 0 < len(mistakes) < len(pool)
    assert rows["row"].tolist() == sorted(mistakes["row"])
    assert (info["hard_scores"], info["selected"]) == (str(HARD_SCORES), len(mistakes))


def test_a_scoring_model_that_trains_on_traces_or_is_unknown_is_refused():
    assert check_scoring_model("thinkrec_no_traces").inputs == ("cf", "keywords")  # the reference's CoLLM with keywords
    assert check_scoring_model("collm").name == "collm"
    for name, why in (("thinkrec", "thinkrec trains on them"), ("thinkrec_stage1", "thinkrec_stage1 trains"),
                      ("thinkrec_no_keywords", "thinkrec_no_keywords trains")):
        with pytest.raises(BadParams, match=rf"^hard_scores.model: '{name}' needs the traces.*{why}"):
            check_scoring_model(name)
    with pytest.raises(BadParams, match=r"^hard_scores.model: 'sasrec' is not an LLM recommender"):
        check_scoring_model("sasrec")


def test_the_model_without_traces_reading_its_file_is_a_one_line_error_and_writes_nothing(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    HARD_SCORES.unlink(missing_ok=True)
    write_params(project, "collm", None)
    with pytest.raises(SystemExit) as exited:
        run_stage(stages.hard_scores.main)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"stages.hard_scores: error: hard_scores.model: collm writes {HARD_SCORES}, but traces.hard_scores "
                   f"is None: set traces.hard_scores: {HARD_SCORES}, or hard_scores.model: null")
    assert not HARD_SCORES.exists()
    check_traces_reads_them(None, None)  # the default: no stage, nothing to check
    with pytest.raises(BadParams, match="traces.hard_scores is 'mine.parquet'"):
        check_traces_reads_them("collm", "mine.parquet")


def test_dvc_yaml_lists_the_stage_only_while_the_key_is_set(monkeypatch, tmp_path, capsys):
    params = yaml.safe_load(PARAMS_FILE.read_text())
    assert params["hard_scores"]["model"] is None and "hard_scores" not in stages.dvc_yaml.pipeline_stages(params)
    params["hard_scores"]["model"] = "collm"
    params["traces"]["hard_scores"] = str(HARD_SCORES)
    listed = stages.dvc_yaml.pipeline_stages(params)
    body = listed["hard_scores"][0]
    assert body["outs"][0] == str(HARD_SCORES) and "data/rec/collm" in body["deps"]
    assert "data/keywords/item_keywords.parquet" not in body["deps"]  # collm's prompts read no keywords
    assert "${traces.hard_scores}" in listed["traces"][0]["deps"]  # DVC runs it before traces
    # the reference profile sets both keys: written for it, dvc.yaml has the stage; the profiles CLI says so
    monkeypatch.chdir(REPO)
    profiles = [str(REPO / "profiles/thinkrec-reference.yaml"), str(REPO / "profiles/ml1m.yaml")]
    assert stages.dvc_yaml.main(["--profiles", *profiles]) == 0
    out = capsys.readouterr().out
    assert "  hard_scores:\n    cmd: python -m stages.hard_scores\n" in out and "data/rec/thinkrec_no_traces" in out
    base = yaml.safe_load(PARAMS_FILE.read_text())
    assert dvc_yaml_sets(base, profile_sets(base, profiles)) == ["hard_scores.model", "traces.hard_scores"]
    # a profile setting the model alone: one line naming both keys, nothing written
    alone = tmp_path / "alone.yaml"
    alone.write_text("hard_scores:\n  model: thinkrec_no_traces\n")
    assert stages.dvc_yaml.main(["--profiles", str(alone)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stages.dvc_yaml: error: hard_scores.model: thinkrec_no_traces writes") and "\n" not in err
