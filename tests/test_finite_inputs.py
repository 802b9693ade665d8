"""CF vectors and prediction scores are checked finite where they are read (issue 31): a NaN or
an inf in data/cf/<model>/*_vectors.parquet or data/predictions/<model>.parquet is a BadInput
naming the file, the row (its position and ids) and the column, at the reader and as one line
from a stage. Before, an inf made every score NaN, a NaN passed for a missing vector ("no vector
for item [...]") or a missing score ("no score for 1 of ..."), or ended in a scikit-learn
traceback in the clusters stage."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

import rec_tiny
from params_base import section
from pipeline import schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.errors import BadInput
from pipeline.metrics.scores import pointwise_scores, topn_scores
from pipeline.rec.examples import load_cf_vectors
from pipeline.registry import ModelEntry
from registry_swap import run_with_models
from synthetic_ingest import write_synthetic_ingest
from test_stage_errors import one_error_line, run_module


def _plant(path, schema, rows: list[int], value: float, component: int = 0) -> None:
    """Set component `component` of the vector (or the score) of the file's `rows` to `value`."""
    frame = read_frame(path, schema)
    column = "vector" if "vector" in frame else "score"
    for row in rows:
        if column == "vector":
            vector = np.array(frame.at[row, "vector"], dtype=np.float32)
            vector[component] = value
            frame.at[row, "vector"] = vector
        else:
            frame.at[row, "score"] = value
    write_frame(frame, path, schema)


@pytest.fixture()
def tiny(tmp_path):
    rec_tiny.write_tiny_artifacts(tmp_path)  # 6 users x 8 items, data/cf/mf vectors
    return tmp_path


def _vectors(root):
    cf = root / "data/cf/mf"
    return load_cf_vectors(cf / "user_vectors.parquet", cf / "item_vectors.parquet", "thinkrec")


def test_an_inf_in_item_vectors_names_file_row_item_and_component(tiny):
    path = tiny / "data/cf/mf/item_vectors.parquet"
    _plant(path, schemas.ITEM_VECTORS, [5, 6, 7], np.inf, component=3)
    with pytest.raises(BadInput) as err:
        _vectors(tiny)
    assert str(err.value) == (f"{path}: row 5 of the file (item 5): vector[3] is inf, not a finite number "
                              "(3 of 8 rows hold NaN or infinite values)")


def test_a_nan_in_user_vectors_is_not_a_missing_vector(tiny):
    path = tiny / "data/cf/mf/user_vectors.parquet"
    _plant(path, schemas.USER_VECTORS, [4], np.nan)  # the first component: was "no vector for user [4]"
    with pytest.raises(BadInput, match=r"user_vectors.parquet: row 4 of the file \(user 4\): vector\[0\] is nan, "
                                       r"not a finite number \(1 of 6 rows"):
        _vectors(tiny)


def test_a_nan_in_per_row_user_states_names_the_interaction_row(tiny):
    cf = tiny / "data/cf/mf"
    states = pd.DataFrame({"row": np.arange(47, -1, -1, dtype=np.int64),  # written newest first
                           "vector": list(np.ones((48, rec_tiny.CF_DIM), np.float32))})
    write_frame(states, cf / "row_user_vectors.parquet", schemas.ROW_USER_VECTORS)
    _plant(cf / "row_user_vectors.parquet", schemas.ROW_USER_VECTORS, [2], -np.inf, component=7)
    with pytest.raises(BadInput, match=r"row_user_vectors.parquet: row 2 of the file \(row 45\): vector\[7\] is -inf"):
        load_cf_vectors(cf / "user_vectors.parquet", cf / "item_vectors.parquet", "thinkrec",
                        cf / "row_user_vectors.parquet")


def test_finite_vectors_load_as_before(tiny):
    vectors = _vectors(tiny)
    frame = read_frame(tiny / "data/cf/mf/item_vectors.parquet", schemas.ITEM_VECTORS)
    assert vectors.items.shape == (8, rec_tiny.CF_DIM) and np.array_equal(vectors.items[3], frame.at[3, "vector"])


def test_a_vector_column_with_empty_rows_names_the_right_row():
    frame = pd.DataFrame({"user": [7, 8, 9], "vector": [[1.0, 2.0], [], [3.0, np.nan]]})
    with pytest.raises(BadInput, match=r"^f: row 2 of the file \(user 9\): vector\[1\] is nan"):
        schemas.require_finite(frame, "vector", "f", ["user"])


def _predictions(root, interactions, name="mf"):
    """A model's predictions that score every interaction row and top-N candidate (right answers)."""
    path = root / f"data/predictions/{name}.parquet"
    scored = interactions[["row", "user", "item"]].assign(score=np.where(interactions["label"] == 1, 1.0, -1.0))
    candidates = read_frame(root / "data/ingest/topn_candidates.parquet", schemas.TOPN_CANDIDATES)
    topn = candidates[["user", "item"]].assign(row=-1, score=candidates["positive"].to_numpy(np.float64))
    write_frame(pd.concat([scored, topn], ignore_index=True), path, schemas.PREDICTIONS)
    return path, candidates


def test_a_nan_score_is_named_not_taken_for_a_missing_row(tiny):
    interactions = read_frame(tiny / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    path, candidates = _predictions(tiny, interactions)
    _plant(path, schemas.PREDICTIONS, [40], np.nan)
    rows = interactions.loc[interactions["split"] == "test", "row"].to_numpy()  # row 40 among them
    with pytest.raises(BadInput) as err:
        pointwise_scores(read_frame(path, schemas.PREDICTIONS), interactions, rows, str(path))
    user, item = interactions.loc[40, ["user", "item"]]
    assert str(err.value) == (f"{path}: row 40 of the file (row 40, user {user}, item {item}): score is nan, not a "
                              f"finite number (1 of {48 + len(candidates)} rows hold NaN or infinite values)")


def test_an_inf_top_n_score_is_an_error_not_a_top_rank(tiny):
    interactions = read_frame(tiny / "data/ingest/interactions.parquet", schemas.INTERACTIONS)
    path, candidates = _predictions(tiny, interactions)
    last = 48 + len(candidates) - 1  # the last top-N candidate (row -1)
    _plant(path, schemas.PREDICTIONS, [last], np.inf)
    user, item = candidates.iloc[-1][["user", "item"]]
    with pytest.raises(BadInput, match=rf"row {last} of the file \(row -1, user {user}, item {item}\): score is inf"):
        topn_scores(read_frame(path, schemas.PREDICTIONS), candidates, str(path))


def test_the_evaluate_stage_says_it_in_one_line(tmp_path):
    interactions = write_synthetic_ingest(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"evaluate": section(
        "evaluate", bootstrap={"resamples": 20, "seed": 7}, selection_subset="valid_small", subset="test_small")}))
    path, _ = _predictions(tmp_path, interactions, "cfone")
    _plant(path, schemas.PREDICTIONS, [100], -np.inf)
    done = run_with_models(tmp_path, "stages.evaluate", (ModelEntry("cfone", "cf", "cf@cfone"),))
    line = one_error_line(done, "stages.evaluate")
    user, item = interactions.loc[100, ["user", "item"]]
    assert f"data/predictions/cfone.parquet: row 100 of the file (row 100, user {user}, item {item}): score is -inf" in line


def test_the_clusters_stage_says_it_in_one_line_not_a_scikit_learn_traceback(tiny):
    (tiny / "params.yaml").write_text(yaml.safe_dump({
        "cf": section("cf", model="mf"), "experts": section("experts", n=2, slots=[0, 1], seed=1)}))
    _plant(tiny / "data/cf_selected/user_vectors.parquet", schemas.USER_VECTORS, [2], np.nan, component=5)
    line = one_error_line(run_module("stages.clusters", tiny), "stages.clusters")
    assert line.endswith("data/cf_selected/user_vectors.parquet: row 2 of the file (user 2): vector[5] is nan, "
                         "not a finite number (1 of 6 rows hold NaN or infinite values)")
    assert not (tiny / "data/experts").exists()


def test_every_reader_of_a_scores_or_vectors_file_checks_it(tmp_path):
    """read_frame checks the finite columns of the schema it is given, so a stage that reads
    predictions or CF vectors through it (traces, thinkrec_experts, ...) names the bad row."""
    import pandas as pd

    from pipeline.artifacts import read_frame, write_frame
    from pipeline.errors import BadInput
    from pipeline.schemas import PREDICTIONS, USER_VECTORS

    scores = pd.DataFrame({"row": [0, 1, 2], "user": [5, 5, 6], "item": [1, 2, 3], "score": [0.5, float("inf"), 1.0]})
    write_frame(scores, tmp_path / "p.parquet", PREDICTIONS)
    with pytest.raises(BadInput, match=r"p.parquet: row 1 of the file \(row 1, user 5, item 2\): score is inf"):
        read_frame(tmp_path / "p.parquet", PREDICTIONS)
    vectors = pd.DataFrame({"user": [0, 1], "vector": [[0.0, 1.0], [float("nan"), 2.0]]})
    write_frame(vectors, tmp_path / "u.parquet", USER_VECTORS)
    with pytest.raises(BadInput, match=r"u.parquet: row 1 of the file \(user 1\): vector\[0\] is nan"):
        read_frame(tmp_path / "u.parquet", USER_VECTORS)
    scores["score"] = [0.5, 0.25, 1.0]
    write_frame(scores, tmp_path / "p.parquet", PREDICTIONS)
    assert read_frame(tmp_path / "p.parquet", PREDICTIONS)["score"].tolist() == [0.5, 0.25, 1.0]
