"""CF models and training on tiny synthetic data: loss goes down, runs are deterministic, and
every model's predict has the right shape, order and agrees with its exported vectors; the stage
writes the same bytes in any checkout."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline.cf.config import LightGCNConfig, MFConfig, SASRecConfig, TrainConfig
from pipeline.cf.data import latest_train_histories, rows_to_tensors, slice_batch, user_windows
from pipeline.cf.export import user_item_vectors
from pipeline.cf.lightgcn import normalized_adjacency
from pipeline.cf.models import build_model, score_rows, training_examples
from pipeline.cf.train import fit, score_batches, seed_everything
from synthetic_ingest import synthetic_interactions, write_synthetic_ingest

REPO = Path(__file__).resolve().parents[1]
N_USERS, N_ITEMS = 40, 50
CONFIGS = {
    "mf": MFConfig(dim=16, lr=0.01, weight_decay=0.0),
    "lightgcn": LightGCNConfig(dim=16, layers=2, lr=0.01, weight_decay=0.0),
    "sasrec": SASRecConfig(hidden=16, blocks=2, heads=1, dropout=0.2, max_length=8, lr=0.01, weight_decay=0.0),
}


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """seed_everything sets the process-wide thread count; other tests keep theirs."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def interactions():
    return synthetic_interactions(N_USERS, N_ITEMS, seed=0)


def train(name, interactions, epochs=4, seed=0):
    config = CONFIGS[name]
    train_config = TrainConfig(seed=seed, batch_size=128, max_epochs=epochs, patience=epochs, threads=1)
    examples, batch_size = training_examples(name, config, interactions, train_config.batch_size)
    valid = interactions[interactions["split"] == "valid"].sort_values("row")
    seed_everything(seed, 1)
    model = build_model(name, config, interactions[interactions["split"] == "train"], N_USERS, N_ITEMS)
    log = fit(model, examples, batch_size,
              lambda: score_rows(name, model, config, interactions, ("valid",))["score"].to_numpy(),
              valid["label"].to_numpy(), train_config, config.lr, config.weight_decay, name)
    return model, log


@pytest.mark.parametrize("name", ["mf", "lightgcn", "sasrec"])
def test_training_lowers_the_loss(name, interactions):
    _, log = train(name, interactions)
    losses = [epoch["loss"] for epoch in log.epochs]
    assert len(losses) == 4
    assert losses[-1] < losses[0]
    assert 1 <= log.best_epoch <= 4


@pytest.mark.parametrize("name", ["mf", "lightgcn", "sasrec"])
def test_same_seed_gives_identical_vectors(name, interactions):
    histories = latest_train_histories(interactions, N_USERS, getattr(CONFIGS[name], "max_length", 1))
    runs = [user_item_vectors(train(name, interactions, epochs=2, seed=seed)[0], histories) for seed in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])


@pytest.mark.parametrize("name", ["mf", "lightgcn", "sasrec"])
def test_predict_shape_order_and_vectors_agree(name, interactions):
    model, _ = train(name, interactions, epochs=1)
    model.eval()
    batch = rows_to_tensors(interactions.head(30), getattr(CONFIGS[name], "max_length", 1))
    with torch.no_grad():
        scores = model.predict(batch)
        reversed_scores = model.predict(slice_batch(batch, torch.arange(29, -1, -1)))
        users = model.user_vectors(batch)
        items = model.item_vectors()
    assert scores.shape == (30,)
    torch.testing.assert_close(reversed_scores, scores.flip(0))
    torch.testing.assert_close(scores, (users * items[batch["item"]]).sum(-1), rtol=1e-5, atol=1e-5)


def test_sasrec_window_scores_equal_per_row_history_encoding(interactions):
    """Rows owned by a user's first window see exactly their own history, as `predict` does."""
    model, _ = train("sasrec", interactions, epochs=1)
    length = CONFIGS["sasrec"].max_length
    windowed = score_rows("sasrec", model, CONFIGS["sasrec"], interactions, ("train", "valid", "test"))
    position = interactions.sort_values("row").groupby("user").cumcount()
    early = interactions.loc[position[position < length].index].sort_values("row")
    per_row = score_batches(model, rows_to_tensors(early, length))
    from_windows = windowed.set_index("row").loc[early["row"], "score"].to_numpy()
    np.testing.assert_allclose(from_windows, per_row, rtol=1e-4, atol=1e-5)


def test_user_windows_make_each_selected_row_a_target_once(interactions):
    windows = user_windows(interactions, 6, ("valid", "test"))
    rows = windows["target_rows"][windows["target_rows"] >= 0].numpy()
    expected = interactions.loc[interactions["split"] != "train", "row"].to_numpy()
    assert sorted(rows.tolist()) == sorted(expected.tolist())
    assert windows["window_items"].shape[1] == 5 and windows["target_items"].shape[1] == 6


def test_lightgcn_adjacency_is_symmetrically_normalized():
    # users 0,1; items 0,1; edges u0-i0, u0-i1, u1-i0 (a duplicate edge counts once)
    adjacency = normalized_adjacency(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 0]), 2, 2).to_dense()
    # degrees: u0=2, u1=1, i0=2, i1=1
    assert adjacency[0, 2] == pytest.approx(1 / 2)
    assert adjacency[0, 3] == pytest.approx(1 / np.sqrt(2))
    assert adjacency[1, 2] == pytest.approx(1 / np.sqrt(2))
    assert adjacency[1, 3] == 0.0
    torch.testing.assert_close(adjacency, adjacency.T)


def test_cf_stage_gives_identical_bytes_in_two_checkouts_with_umask_modes(tmp_path):
    """Checkpoints saved straight to a temporary file named the zip's inner folder after it, and
    train_log.json held the training time: both made identical runs differ."""
    repo_params = yaml.safe_load((REPO / "params.yaml").read_text())
    params, ranking = repo_params["cf"], repo_params["ranking"]
    params["train"].update(max_epochs=2, patience=1)
    outputs = []
    for checkout, umask in (("a", 0o022), ("elsewhere/b", 0o002)):
        root = tmp_path / checkout
        write_synthetic_ingest(root, N_USERS, N_ITEMS)
        (root / "params.yaml").write_text(yaml.safe_dump({"cf": params, "ranking": ranking}))
        run = "import stages.cf as cf\nfor name in ('mf', 'lightgcn', 'sasrec'): cf.main(name)"
        done = subprocess.run([sys.executable, "-c", run], cwd=root, env={**os.environ, "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(umask))
        assert done.returncode == 0, done.stderr
        written = sorted(p for p in (root / "data").rglob("*") if "ingest" not in p.parts)
        outputs.append({str(p.relative_to(root)): p.read_bytes() for p in written if p.is_file()})
        modes = {p.stat().st_mode & 0o777 for p in written}
        assert modes == ({0o644, 0o755} if umask == 0o022 else {0o664, 0o775})
    # 4 files per model + 3 predictions + 3 full-catalogue ranks + SASRec's per-row user states
    assert len(outputs[0]) == 3 * 4 + 3 + 3 + 1 and not [p for p in outputs[0] if Path(p).name.startswith(".")]
    assert "data/cf/sasrec/row_user_vectors.parquet" in outputs[0] and "data/cf/mf/row_user_vectors.parquet" not in outputs[0]
    states = pd.read_parquet(tmp_path / "a/data/cf/sasrec/row_user_vectors.parquet")
    interactions = pd.read_parquet(tmp_path / "a/data/ingest/interactions.parquet")
    assert sorted(states["row"]) == sorted(interactions["row"]) and len(states["vector"].iloc[0]) == params["sasrec"]["hidden"]
    assert outputs[0].keys() == outputs[1].keys()
    assert [p for p in outputs[0] if outputs[0][p] != outputs[1][p]] == []


def test_each_cf_class_declares_what_it_is_and_the_registry_trains_exactly_those():
    from pipeline import registry
    from pipeline.cf.config import CFParams
    from pipeline.cf.models import CF_MODELS

    assert sorted(CF_MODELS) == sorted(entry.name for entry in registry.models("cf"))
    for name, cls in CF_MODELS.items():
        assert cls.config_class is CFParams.model_fields[name].annotation  # its params section is cf.<name>
