"""The reference recipe's options of the expert stages: every user of train, valid and test
clustered (`experts.cluster_users: all`, as ThinkRec's user_group.py) and experts trained in
ThinkRec's stage-1 variant on text prompts (`experts.train.prompt: text`, as its stage 3). At their
defaults the clusters ignore users without train rows, as before. The text experts' whole run
(trained, then scored inside the stage-2 model) is in tests/test_experts_stages.py (slow)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import rec_tiny
from params_base import section
from pipeline import layout, registry, schemas
from pipeline.artifacts import read_frame, write_frame
from pipeline.experts.assembly import BASE_VARIANT, expert_start
from pipeline.rec.variants import get_variant
from stages import clusters
from test_stage_errors import one_error_line, run_module
from tiny_ingest import write_cf_selection

ROOT = Path(__file__).resolve().parents[1]
COLD = [6, 7]  # users added with valid and test rows only (the tiny data's users 0-5 all have train rows)


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    rec_tiny.write_tiny_artifacts(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _params(root: Path, **experts) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump({
        "cf": section("cf", model="mf"), "experts": section("experts", n=2, slots=[0, 1], seed=1, **experts)}))


def _add_cold_users(root: Path, vectors: np.ndarray) -> None:
    """Users 6 and 7: copies of users 0 and 1's valid and test rows, CF vectors `vectors` (2, d)."""
    path = root / layout.INTERACTIONS
    frame = read_frame(path, schemas.INTERACTIONS)
    extra = frame[frame["user"].isin([0, 1]) & (frame["split"] != "train")].copy()
    extra["user"] += COLD[0]
    extra["row"] = np.arange(len(frame), len(frame) + len(extra))
    write_frame(pd.concat([frame, extra], ignore_index=True), path, schemas.INTERACTIONS)
    users = root / "data/cf/mf/user_vectors.parquet"
    table = read_frame(users, schemas.USER_VECTORS)
    added = pd.DataFrame({"user": COLD, "vector": list(vectors.astype(np.float32))})
    write_frame(pd.concat([table, added], ignore_index=True), users, schemas.USER_VECTORS)
    write_cf_selection(root, "mf")


def _twins(root: Path) -> np.ndarray:
    """Vectors for users 6 and 7 next to users 0 and 1's."""
    table = read_frame(root / "data/cf/mf/user_vectors.parquet", schemas.USER_VECTORS).set_index("user")
    return np.stack([np.asarray(table.at[u, "vector"]) + 1e-3 for u in (0, 1)])


def _outputs(root: Path) -> tuple[pd.DataFrame, str, dict]:
    return (read_frame(root / layout.CLUSTERS_DIR / "user_clusters.parquet", schemas.USER_CLUSTERS),
            (root / layout.CLUSTERS_DIR / "clustering.json").read_text(),
            json.loads((root / "metrics/clusters.json").read_text()))


def test_the_default_clusters_users_with_train_rows_whatever_other_users_there_are(tiny):
    _params(tiny)
    clusters.main()
    before, description, _ = _outputs(tiny)
    _add_cold_users(tiny, _twins(tiny))
    clusters.main()
    after, description_after, metrics = _outputs(tiny)
    pd.testing.assert_frame_equal(after, before)  # the users without train rows change nothing
    assert description_after == description
    assert sorted(after["user"]) == [0, 1, 2, 3, 4, 5]
    assert (metrics["cluster_users"], metrics["clustered_users"], metrics["cold_users"],
            metrics["clustered_without_train_rows"]) == ("train", 6, 2, 0)
    assert metrics["sizes_with_train_rows"] == metrics["sizes"]


def test_all_clusters_every_user_of_train_valid_and_test(tiny):
    _params(tiny, cluster_users="all")
    _add_cold_users(tiny, _twins(tiny))
    clusters.main()
    frame, _, metrics = _outputs(tiny)
    cluster_of = dict(zip(frame["user"], frame["cluster"]))
    assert sorted(cluster_of) == [0, 1, 2, 3, 4, 5, 6, 7]  # no user left cold: the gate routes every row
    assert cluster_of[6] == cluster_of[0] and cluster_of[7] == cluster_of[1]  # each next to its twin
    assert (metrics["cluster_users"], metrics["clustered_users"], metrics["cold_users"],
            metrics["clustered_without_train_rows"]) == ("all", 8, 0, 2)
    assert sum(metrics["sizes"]) == 8 and sum(metrics["sizes_with_train_rows"]) == 6
    assert metrics["sizes_with_train_rows"] == np.bincount(frame.loc[frame["user"] < 6, "cluster"]).tolist()


def test_all_refuses_a_cluster_whose_expert_would_have_no_train_rows(tiny):
    _add_cold_users(tiny, np.full((2, rec_tiny.CF_DIM), 50.0))  # far from everyone: a cluster of their own
    _params(tiny, cluster_users="all")
    line = one_error_line(run_module("stages.clusters", tiny), "stages.clusters")
    assert "experts.cluster_users = all: cluster(s) [1] of 2 hold no user with train rows" in line
    assert not (tiny / "data/experts").exists()
    _params(tiny)  # the default leaves them out
    assert run_module("stages.clusters", tiny).returncode == 0


@pytest.mark.parametrize(("module", "args", "key", "value"), [
    ("stages.clusters", (), "cluster_users", "everyone"),
    ("stages.expert", ("0",), "train", {"prompt": "ids"}),
])
def test_a_bad_value_is_one_line_naming_the_key(tiny, module, args, key, value):
    _params(tiny, **{key: value})
    line = one_error_line(run_module(module, tiny, *args), module)
    assert f"experts.{key}" + (".prompt" if key == "train" else "") in line
    assert "Input should be" in line


def test_the_text_prompt_trains_in_the_lora_the_stage2_model_froze():
    assert expert_start("cf") == BASE_VARIANT == "thinkrec"
    text = get_variant(expert_start("text"))
    assert text.name == registry.get_model(BASE_VARIANT).starts_from == "thinkrec_stage1"
    assert (text.stage, text.cf_slots, text.keywords, text.traces) == (1, False, True, True)
    assert get_variant(expert_start("cf")).cf_slots
    with pytest.raises(ValueError, match="experts.train.prompt"):
        expert_start("ids")


def test_dvc_yaml_declares_what_either_prompt_reads():
    """dvc.yaml is not rewritten by `dvc exp run -S experts.train.prompt=text`: the expert stages
    list the stage-2 model with the CF vectors (cf) and the stage-1 LoRA (text)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    expert = stages["expert"]["do"]
    for prompt in ("cf", "text"):
        assert str(layout.rec_dir(expert_start(prompt))) in expert["deps"]
    assert str(layout.CF_SELECTED_DIR) in expert["deps"] and "experts.train" in expert["params"]
    assert "experts.cluster_users" in stages["clusters"]["params"]
