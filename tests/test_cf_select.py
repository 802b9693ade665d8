"""The cf_select stage: `cf.model: auto` takes the CF model with the best AUC on validation rows,
a named model is taken as named, test rows never decide, a chosen model at chance is a warning;
the chosen model's files reach data/cf_selected/ byte for byte, and no later stage reads cf.model.

Three CF models on synthetic ingest: lightgcn is the best on the validation rows, mf is good there,
sasrec is worse than a coin there but perfect on the test rows (so a choice that saw test rows would
take it)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from params_base import section
from sklearn.metrics import roc_auc_score
from synthetic_ingest import write_synthetic_ingest
from test_stage_errors import one_error_line, run_module

import stages.cf_select
from pipeline import layout, schemas
from pipeline.artifacts import UnreadableArtifact, read_frame, write_frame
from pipeline.cf.selected import selected_cf_model
from stages import dvc_yaml
from stages.code_deps import imported_names

ROOT = Path(__file__).resolve().parents[1]
# model -> (scores of the valid rows, of the other rows): label + noise, or the label reversed
NOISE = {"mf": (1.0, 1.0), "lightgcn": (0.5, 3.0), "sasrec": (-1.0, 0.0)}


def _scores(labels: np.ndarray, noise: float, seed: int) -> np.ndarray:
    if noise < 0:  # worse than a coin: the label reversed, blurred
        return -labels + np.random.default_rng(seed).normal(scale=-noise, size=labels.size)
    return labels + np.random.default_rng(seed).normal(scale=noise, size=labels.size)


def _write_cf_model(root: Path, name: str, interactions: pd.DataFrame, seed: int) -> None:
    """data/cf/<name>/ (vectors, a checkpoint's bytes, a log; sasrec: per-row states) and its predictions."""
    rng = np.random.default_rng(seed)
    cf_dir = root / layout.cf_dir(name)
    users, items = interactions["user"].max() + 1, interactions["item"].max() + 1
    write_frame(pd.DataFrame({"user": range(users), "vector": list(rng.normal(size=(users, 4)).astype(np.float32))}),
                cf_dir / "user_vectors.parquet", schemas.USER_VECTORS)
    write_frame(pd.DataFrame({"item": range(items), "vector": list(rng.normal(size=(items, 4)).astype(np.float32))}),
                cf_dir / "item_vectors.parquet", schemas.ITEM_VECTORS)
    (cf_dir / "model.pt").write_bytes(rng.bytes(300))
    (cf_dir / "train_log.json").write_text(json.dumps({"model": name}))
    if name == "sasrec":
        write_frame(pd.DataFrame({"row": interactions["row"], "vector": list(rng.normal(size=(len(interactions), 4))
                                                                               .astype(np.float32))}),
                    cf_dir / "row_user_vectors.parquet", schemas.ROW_USER_VECTORS)
    labels = interactions["label"].to_numpy(np.float64)
    valid, other = NOISE[name]
    scores = np.where(interactions["split"] == "valid", _scores(labels, valid, seed), _scores(labels, other, seed + 1))
    write_frame(interactions[["row", "user", "item"]].assign(score=scores.astype(np.float32)),
                root / layout.predictions(name), schemas.PREDICTIONS)


def _params(root: Path, model: str = "auto", chance_auc: float = 0.55, rows: str = "valid_small") -> None:
    (root / "params.yaml").write_text(yaml.safe_dump({
        "cf": section("cf", model=model, chance_auc=chance_auc), "evaluate": section("evaluate", selection_subset=rows)}))


@pytest.fixture()
def project(tmp_path, monkeypatch):
    interactions = write_synthetic_ingest(tmp_path)
    for seed, name in enumerate(NOISE):
        _write_cf_model(tmp_path, name, interactions, 10 * seed)
    monkeypatch.chdir(tmp_path)
    return tmp_path, interactions


def _auc_by_hand(root: Path, interactions: pd.DataFrame, name: str, subset: str) -> float:
    rows = read_frame(root / layout.SUBSETS, schemas.SUBSET_ROWS).query("subset == @subset")["row"]
    scored = read_frame(root / layout.predictions(name), schemas.PREDICTIONS).set_index("row").loc[rows, "score"]
    return roc_auc_score(interactions.set_index("row").loc[rows, "label"], scored)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _run(capsys) -> tuple[dict, str]:
    stages.cf_select.main()
    return json.loads(Path(stages.cf_select.METRICS).read_text()), capsys.readouterr().out


def test_auto_takes_the_best_valid_auc_and_copies_its_files_byte_for_byte(project, capsys):
    root, interactions = project
    _params(root)
    metrics, out = _run(capsys)
    by_hand = {name: _auc_by_hand(root, interactions, name, "valid_small") for name in NOISE}
    assert metrics["aucs"] == pytest.approx(by_hand, abs=1e-9)
    assert max(by_hand, key=by_hand.get) == "lightgcn" and by_hand["mf"] > 0.55 > by_hand["sasrec"]
    # on the test rows sasrec is the best by far: a choice that saw them would take it
    on_test = {name: _auc_by_hand(root, interactions, name, "test_small") for name in NOISE}
    assert max(on_test, key=on_test.get) == "sasrec"
    assert (metrics["model"], metrics["requested"], metrics["rows"]) == ("lightgcn", "auto", "valid_small")
    assert metrics["auc"] == pytest.approx(by_hand["lightgcn"]) and not metrics["at_chance"] and metrics["warning"] is None
    assert out.startswith("cf_select: lightgcn (the best AUC on valid_small; AUC on valid_small: mf ") and "warning" not in out
    assert selected_cf_model() == "lightgcn"
    # every file the LLM stages read is the chosen model's, byte for byte
    source = root / layout.cf_dir("lightgcn")
    selected = root / layout.CF_SELECTED_DIR
    assert {p.name for p in selected.iterdir()} == {p.name for p in source.iterdir()} | {"predictions.parquet",
                                                                                          "selected.json"}
    for path in source.iterdir():
        assert _md5(selected / path.name) == _md5(path), path.name
    assert _md5(selected / "predictions.parquet") == _md5(root / layout.predictions("lightgcn"))
    assert json.loads((selected / "selected.json").read_text()) == {"model": "lightgcn"}


def test_a_named_model_is_taken_as_named(project, capsys):
    root, _ = project
    _params(root, model="mf")
    metrics, out = _run(capsys)
    assert (metrics["model"], metrics["requested"], metrics["at_chance"]) == ("mf", "mf", False)
    assert metrics["aucs"]["lightgcn"] > metrics["auc"]  # a better one was there
    assert out.startswith("cf_select: mf (cf.model: mf; AUC on valid_small: ") and "warning" not in out
    assert _md5(root / layout.CF_SELECTED_DIR / "user_vectors.parquet") == _md5(root / "data/cf/mf/user_vectors.parquet")
    assert selected_cf_model(requested="mf") == "mf" == selected_cf_model(requested="auto")
    with pytest.raises(UnreadableArtifact, match=r"selected.json: holds mf, but params.yaml cf.model is sasrec"):
        selected_cf_model(requested="sasrec")  # `thinkrec recommend` after cf.model changed without a rerun


def test_a_chosen_model_at_chance_is_a_warning_in_the_output_and_the_metrics(project, capsys):
    root, _ = project
    _params(root, model="sasrec")
    metrics, out = _run(capsys)
    auc, best = metrics["auc"], metrics["aucs"]["lightgcn"]
    assert metrics["model"] == "sasrec" and auc < 0.5 and metrics["at_chance"]
    warning = (f"sasrec's AUC {auc:.3f} on valid_small is below cf.chance_auc 0.55: the CF tokens it feeds the LLM "
               f"stages carry about a coin's signal; lightgcn has {best:.3f} (cf.model: auto would take it)")
    assert metrics["warning"] == warning
    assert out.splitlines()[-1] == f"cf_select: warning: {warning}"
    assert (root / layout.CF_SELECTED_DIR / "row_user_vectors.parquet").exists()  # still written: a warning
    # auto with every model below the threshold: the best one, and the warning says none is above it
    _params(root, chance_auc=0.99)
    metrics, out = _run(capsys)
    assert metrics["model"] == "lightgcn" and metrics["at_chance"]
    assert out.splitlines()[-1].endswith("no CF model is above it: check the cf stages' training "
                                         "(data/cf/<model>/train_log.json)")


def test_test_rows_never_choose(project):
    root, _ = project
    _params(root, rows="test_small")
    line = one_error_line(run_module("stages.cf_select", root), "stages.cf_select")
    assert "evaluate.selection_subset 'test_small' holds test rows" in line
    assert not (root / layout.CF_SELECTED_DIR).exists() and not (root / "metrics").exists()


def test_a_bad_vector_file_is_named_at_its_source_and_nothing_is_selected(project):
    root, _ = project
    _params(root)
    path = root / "data/cf/lightgcn/item_vectors.parquet"
    frame = read_frame(path, schemas.ITEM_VECTORS)
    frame.at[3, "vector"] = np.array([np.nan, 0, 0, 0], np.float32)
    write_frame(frame, path, schemas.ITEM_VECTORS)
    with pytest.raises(ValueError, match=r"^data/cf/lightgcn/item_vectors.parquet: row 3 of the file \(item 3\)"):
        stages.cf_select.main()
    assert not (root / layout.CF_SELECTED_DIR).exists()


def test_no_later_stage_names_a_cf_model():
    """dvc.yaml: only cf@<model> and cf_select read CF params or data/cf/<model>; the others read
    data/cf_selected/. The code: only the cf stages and `thinkrec recommend` (its stale check) read cf.model."""
    text = dvc_yaml.render(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert "${cf.model}" not in text
    stages_ = yaml.safe_load(text)["stages"]
    readers = {name for name, body in stages_.items()
               if any(str(p).startswith("cf.") for p in body.get("params", []))
               or any(str(d).startswith("data/cf/") for d in body.get("deps", []))}
    assert readers == {"cf_select"}  # (cf@<model> is a foreach: its body sits under `do`)
    selected = {name for name, body in stages_.items() if any(str(d).startswith("data/cf_selected") for d in
                                                               (body.get("deps") or body.get("do", {}).get("deps", [])))}
    assert {"traces", "clusters", "collm", "thinkrec", "rdrec", "gate", "expert", "explain"} <= selected
    files = [path.relative_to(ROOT) for folder in ("pipeline", "stages") for path in (ROOT / folder).rglob("*.py")]
    reading = {str(path) for path in files if "pipeline.cf.config.CFParams" in imported_names(path)}
    assert reading == {"stages/cf.py", "stages/cf_select.py", "pipeline/cli/recommend.py"}
