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
from pipeline.metrics.classification import auc, uauc
from pipeline.profiles import dvc_yaml_sets, main as profiles_main, profile_sets
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
    labels = train["label"].to_numpy()
    wrong = (scored["score"].to_numpy() > 0.0).astype(int) != labels
    assert (metrics["model"], metrics["rows"], metrics["wrong"]) == ("collm", 30, int(wrong.sum()))
    assert metrics["wrong_by_label"] == {str(label): int((wrong & (labels == label)).sum()) for label in (0, 1)}
    assert metrics["auc"] == auc(labels, scored["score"].to_numpy())
    assert metrics["uauc"] == uauc(train["user"].to_numpy(), labels, scored["score"].to_numpy())[0]
    assert metrics["ingest"]  # stamped with the ingest it scored
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
    for name, why in (("thinkrec", "thinkrec trains on them"), ("thinkrec_stage1", "thinkrec_stage1 trains")):
        with pytest.raises(BadParams, match=rf"^hard_scores.model: '{name}' needs the traces.*{why}"):
            check_scoring_model(name)
    for name in ("sasrec", "thinkrec_no_keywords"):  # not an LLM; an LLM no stage of the default run trains
        with pytest.raises(BadParams, match=rf"^hard_scores.model: '{name}' is not an LLM recommender the pipeline trains"):
            check_scoring_model(name)


def test_the_model_without_traces_reading_its_file_is_a_one_line_error_and_writes_nothing(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    HARD_SCORES.unlink(missing_ok=True)
    write_params(project, "collm", None)
    with pytest.raises(SystemExit) as exited:
        run_stage(stages.hard_scores.main)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"stages.hard_scores: error: hard_scores.model: collm writes {HARD_SCORES}, but traces.hard_scores "
                   f"is null: set traces.hard_scores: {HARD_SCORES}, or hard_scores.model: null")
    assert not HARD_SCORES.exists()
    traces = {"selection": "hard", "hard_scores": None, "score_threshold": None}
    check_traces_reads_them(None, traces)  # the default: no stage, nothing to check
    with pytest.raises(BadParams, match="traces.hard_scores is mine.parquet: set"):
        check_traces_reads_them("collm", {**traces, "hard_scores": "mine.parquet"})
    with pytest.raises(BadParams, match="but traces.selection is random: set traces.selection: hard"):
        check_traces_reads_them("collm", {**traces, "selection": "random", "hard_scores": str(HARD_SCORES)})


def test_dvc_yaml_lists_the_stage_only_while_the_key_is_set(monkeypatch, tmp_path, capsys):
    params = yaml.safe_load(PARAMS_FILE.read_text())
    assert params["hard_scores"]["model"] is None and "hard_scores" not in stages.dvc_yaml.pipeline_stages(params)
    params["hard_scores"]["model"] = "collm"
    params["traces"]["hard_scores"] = str(HARD_SCORES)
    listed = stages.dvc_yaml.pipeline_stages(params)
    body = listed["hard_scores"][0]
    assert body["outs"][0] == str(HARD_SCORES) and "data/rec/collm" in body["deps"]
    assert "data/keywords/item_keywords.parquet" not in body["deps"]  # collm's prompts read no keywords
    # DVC runs it before traces: traces depends on its out, by name (a null ${traces.hard_scores} in params.yaml,
    # before `dvc exp run -S` sets it, would stop DVC reading dvc.yaml at all)
    assert str(HARD_SCORES) in listed["traces"][0]["deps"] and "${traces.hard_scores}" not in listed["traces"][0]["deps"]
    assert params["traces"]["hard_scores"] in body["outs"] and "rec.overrides.collm" not in body["params"]
    params["rec"]["overrides"] = {"collm": {"dtype": "float32"}}  # the model's own training dtype: a param of its scores
    assert "rec.overrides.collm" in stages.dvc_yaml.pipeline_stages(params)["hard_scores"][0]["params"]
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
    assert stages.dvc_yaml.main(["--profiles", str(tmp_path / "missing.yaml")]) == 2  # a missing profile: one line
    err = capsys.readouterr().err.strip()
    assert err.startswith("stages.dvc_yaml: error:") and "missing.yaml" in err and "\n" not in err


def test_the_profiles_command_says_when_dvc_yaml_must_be_written_for_them(monkeypatch, tmp_path, capsys):
    """Either way: profiles that add the stage to a dvc.yaml without it, or a dvc.yaml written for
    them under profiles that do not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(PARAMS_FILE.read_text())
    reference = [str(REPO / "profiles/thinkrec-reference.yaml"), str(REPO / "profiles/ml1m.yaml")]

    def hint(dvc_yaml: str, profiles: list[str]) -> str:
        (tmp_path / "dvc.yaml").write_text(dvc_yaml)
        monkeypatch.setattr("sys.argv", ["pipeline.profiles", *profiles])
        profiles_main()
        out, err = capsys.readouterr()
        assert out.startswith("-S ")  # the arguments are printed either way
        return err.strip()

    assert hint("stages:\n  traces: {cmd: x}\n", reference).startswith(
        "pipeline.profiles: these profiles set hard_scores.model, traces.hard_scores, which decide dvc.yaml's stages:"
        " first run python -m stages.dvc_yaml --write --profiles ")
    assert hint("stages:\n  hard_scores: {cmd: x}\n  traces: {cmd: x}\n", reference) == ""  # written for them
    rdrec = [str(REPO / "profiles/rdrec-amazon2014.yaml")]
    assert hint("stages:\n  hard_scores: {cmd: x}\n", rdrec).startswith(
        "pipeline.profiles: dvc.yaml was written for other profiles")
    assert hint("stages:\n  traces: {cmd: x}\n", rdrec) == ""
