"""Training the gate network: the fused model frozen, the gate's weights trained to minimise the
fused model's BCE on validation rows (never test rows). Only the top layers hold experts, so the
lower layers run once per row (cached) and each step runs the top layers with the gate's weights."""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.rec.gate import Gate
from pipeline.experts.params import GateTrainParams
from pipeline.experts.training import cache_lower_states, padded_states
from pipeline.rec.batching import answer_states, collate, length_buckets
from pipeline.rec.examples import RecExample
from pipeline.rec.model import RecModel
from pipeline.rec.split_body import upper_layer_indices, upper_states


def train_gate(
    rec: RecModel, gate: Gate, examples: Sequence[RecExample], vectors: np.ndarray, upper: int,
    params: GateTrainParams,
) -> dict:
    """Train `gate.network` in place on `examples` (their raw user vectors (m, d) in `vectors`)."""
    if gate.network is None:
        raise ValueError("only a trained gate has a network to train")
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    lower = upper_layer_indices(rec, upper).start
    rec.eval()
    rec.requires_grad_(False)
    started = time.perf_counter()
    cache = cache_lower_states(rec, examples, lower, params.batch_size)
    standardized = gate.standardize(vectors)
    optimizer = torch.optim.Adam(gate.network.parameters(), lr=params.lr)
    gate.network.train()
    log: dict = {"epochs": [], "rows": len(examples), "lower_layers": lower}
    for epoch in range(params.epochs):
        total, count = 0.0, 0
        for index in length_buckets([e.length for e in examples], params.batch_size, rng):
            chunk = [examples[i] for i in index]
            batch = collate(chunk, rec.pad_id, with_answers=True).to(rec.device)
            weights = gate.network(standardized[index])  # (B, E) on the CPU: routing moves them
            hidden = upper_states(rec, padded_states(cache, chunk, batch.input_ids.shape[1]), batch.attention_mask,
                                  lower, weights)
            logits = rec.answer_logit(answer_states(hidden, batch.prompt_lengths))
            loss = F.binary_cross_entropy_with_logits(logits, batch.labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total, count = total + float(loss.detach()) * len(chunk), count + len(chunk)
        log["epochs"].append({"epoch": epoch + 1, "bce": total / max(count, 1)})
    gate.network.eval()
    log["seconds"] = time.perf_counter() - started
    return log
