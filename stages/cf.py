"""CF stage: train one CF model, write its vectors, checkpoint, log and predictions.

Usage: python -m stages.cf <mf|lightgcn|sasrec>
Reads data/ingest/{interactions,users,items,topn_candidates}.parquet and params cf.train, cf.<model>,
ranking. Writes data/cf/<model>/{user_vectors,item_vectors}.parquet, model.pt, train_log.json
(swapped in as a whole directory), data/predictions/<model>.parquet and data/ranking/<model>.parquet
(the full-catalogue ranks of every evaluated user's targets, pipeline/ranking). Identical inputs give identical bytes
in any checkout: no timings, paths or temporary names inside the artifacts.
"""
from __future__ import annotations

if __name__ == "__main__":  # before torch loads: the kernels' code paths are fixed at load time
    from pipeline.cf.kernels import pin_cf_kernels

    pin_cf_kernels()

import io
import sys

import numpy as np
import pandas as pd
import torch

from pipeline import layout
from pipeline.artifacts import atomic_directory, atomic_paths, read_frame, write_bytes, write_frame, write_json
from pipeline.cf.config import CFParams
from pipeline.cf.data import latest_train_histories, rows_to_tensors, topn_histories
from pipeline.cf.export import prediction_frame, user_item_vectors, vector_frames
from pipeline.cf.models import (
    MODEL_CONFIGS, SEQUENTIAL, build_model, history_length_of, score_rows, training_examples,
)
from pipeline.cf.train import fit, seed_everything
from pipeline.errors import run_stage
from pipeline.ranking.catalogue import evaluated_users
from pipeline.ranking.params import RankingParams
from pipeline.ranking.ranks import vector_ranks
from pipeline.schemas import (
    INTERACTIONS, ITEM_VECTORS, ITEMS, PREDICTIONS, RANKS, ROW_USER_VECTORS, SPLITS, TOPN_CANDIDATES, USER_VECTORS,
    USERS,
)
from pipeline.params import load_section
from stages.stamp import stamped



def main(name: str) -> None:
    if name not in MODEL_CONFIGS:
        raise SystemExit(f"usage: python -m stages.cf <{'|'.join(MODEL_CONFIGS)}>; got '{name}'")
    params = load_section("cf", CFParams)
    ranking = load_section("ranking", RankingParams)  # before training: a bad key fails in seconds
    config = getattr(params, name)
    interactions = read_frame(layout.INTERACTIONS, INTERACTIONS)
    n_users = len(read_frame(layout.USERS, USERS))
    n_items = len(read_frame(layout.ITEMS, ITEMS))
    candidates = read_frame(layout.TOPN_CANDIDATES, TOPN_CANDIDATES)
    examples, batch_size = training_examples(name, config, interactions, params.train.batch_size)
    valid = interactions[interactions["split"] == "valid"].sort_values("row")

    seed_everything(params.train.seed, params.train.threads)
    model = build_model(name, config, interactions[interactions["split"] == "train"], n_users, n_items)
    log = fit(model, examples, batch_size,
              lambda: score_rows(name, model, config, interactions, ("valid",))["score"].to_numpy(),
              valid["label"].to_numpy(), params.train, config.lr, config.weight_decay, f"cf {name}")

    out = layout.cf_dir(name)
    histories = latest_train_histories(interactions, n_users, history_length_of(config))
    users, items = user_item_vectors(model, histories)
    user_frame, item_frame = vector_frames(users, items)
    row_frame = None
    ranked = evaluated_users(interactions, n_items, ranking)
    ranked_states = users[ranked.users]
    if name in SEQUENTIAL:  # the user state before each row, from that row's own history
        ordered = interactions.sort_values("row")
        states, _ = user_item_vectors(model, rows_to_tensors(ordered, history_length_of(config)))
        row_frame = pd.DataFrame({"row": ordered["row"].to_numpy(), "vector": list(states)})
        ranked_states = states[np.searchsorted(ordered["row"].to_numpy(), ranked.first_rows)]
    candidate_users, _ = user_item_vectors(model, topn_histories(candidates, interactions, histories))
    row_scores = score_rows(name, model, config, interactions, SPLITS)
    predictions = prediction_frame(row_scores, interactions, candidates, candidate_users, items)
    ranks = vector_ranks(ranked_states, items, ranked)
    # the vectors, checkpoint, log (stamped: `thinkrec recommend` checks where they come from),
    # predictions and ranks appear together or not at all
    with atomic_directory(out) as tmp, atomic_paths(layout.predictions(name), layout.ranking(name)) as temporaries:
        write_frame(user_frame, tmp / "user_vectors.parquet", USER_VECTORS)
        write_frame(item_frame, tmp / "item_vectors.parquet", ITEM_VECTORS)
        if row_frame is not None:
            write_frame(row_frame, tmp / "row_user_vectors.parquet", ROW_USER_VECTORS)
        write_bytes(checkpoint_bytes({"model": name, "config": config.model_dump(), "n_users": n_users,
                                      "n_items": n_items, "state_dict": model.state_dict()}), tmp / "model.pt")
        write_json(stamped({"model": name, **log.as_dict()}, f"cf@{name}"), tmp / "train_log.json")
        write_frame(predictions, temporaries[0], PREDICTIONS)
        write_frame(ranks, temporaries[1], RANKS)
    print(f"cf {name}: best valid AUC {log.best_valid_auc:.4f} at epoch {log.best_epoch}/"
          f"{len(log.epochs)} in {log.seconds:.0f}s; wrote {out}/ ({n_users} users, {n_items} items), "
          f"{layout.predictions(name)} ({len(predictions)} scores) and {layout.ranking(name)} "
          f"({len(ranks)} targets of {ranked.users.size} users ranked over the catalogue)")


def checkpoint_bytes(checkpoint: dict) -> bytes:
    """torch.save into memory: saved to a file, the zip's inner folder is named after the file
    (a random temporary name here), so identical weights would give different bytes."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m stages.cf <mf|lightgcn|sasrec>")
    run_stage(main, sys.argv[1])
