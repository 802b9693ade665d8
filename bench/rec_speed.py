"""Benchmark of the LLM recommender's hot paths, each a ratio measured in one run on the same rows:

- scoring: the old path (fp32 weights under bf16 autocast, bf16 answer logits, a full pass per row)
  vs the stages' path (frozen weights cast to bf16 once, the shared system prefix run once, answer
  logits in fp32): rows/s, achieved GFLOP/s against this machine's measured bf16 matmul peak, and
  the distinct scores each gives (bf16 logits tie);
- top-N: one user's 1 + 99 candidates scored against the cached history prefix vs full prompts;
- training: tokens/s and GFLOP/s, autocast vs frozen weights cast to bf16 once (the stages' path);
  two candidates the stages do not use, each against the stages' path: each micro-batch's shared
  system prefix run once with gradients (stage 1: LoRA trained), and stage 2's frozen LoRA merged
  into the bf16 weights (projector trained; also its scoring and the scores it changes).

FLOPs count the decoder's linear layers only (2 per weight per token forward; training with a
frozen backbone ~4: forward + input gradients), so GFLOP/s is a lower bound of the work done.
Backbone: the prepared SmolLM2 (data/models/smollm2-135m-instruct) when present, else a tiny
random Llama (said in the output). Run from the project root on a quiet machine:
`python bench/rec_speed.py` (writes bench/results/rec_speed.json).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.artifacts import read_frame, write_json  # noqa: E402
from pipeline.explain.bertscore import minilm_dir  # noqa: E402
from pipeline.rec.batching import collate, length_buckets  # noqa: E402
from pipeline.rec.examples import CFVectors, build_catalog, build_examples, topn_frame  # noqa: E402
from pipeline.rec.losses import rec_loss  # noqa: E402
from pipeline.rec.model import RecModel, build_rec_model, use_precision  # noqa: E402
from pipeline.rec.params import RecParams  # noqa: E402
from pipeline.rec.prefix import prefix_kv, split_example, suffix_states  # noqa: E402
from pipeline.rec.prompts import get_template  # noqa: E402
from pipeline.rec.scoring import score_candidates, score_examples  # noqa: E402
from pipeline.schemas import INTERACTIONS, ITEMS, TOPN_CANDIDATES  # noqa: E402
from pipeline.params import load_section  # noqa: E402

SMOLLM2 = Path("data/models/smollm2-135m-instruct")
INGEST = Path("data/ingest")
RESULTS = Path("bench/results/rec_speed.json")
CF_DIM = 64  # random CF vectors: their values do not change the timings
HISTORY = 5  # rec.prompt.history_items
REC = load_section("rec", RecParams, Path(__file__).resolve().parents[1] / "params.yaml")  # lora, loss


def backbone(requested: Path, scratch: Path) -> tuple[str, str]:
    """(path, description): `requested` (default the prepared SmolLM2) when it exists, else a
    tiny random Llama saved under `scratch`."""
    if (requested / "config.json").exists():
        return str(requested), f"{requested.name} ({requested})"
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    print(f"{requested} not found (run the prepare_model stage): using a tiny random Llama instead")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())  # any real tokenizer; MiniLM's is bundled
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
    )
    path = scratch / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path), "tiny random Llama (2 layers, hidden 64; SmolLM2 not prepared)"


def bench_frames(n_rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(interactions, items, description): test rows with >= HISTORY earlier interactions."""
    if (INGEST / "interactions.parquet").exists():
        frame = read_frame(INGEST / "interactions.parquet", INTERACTIONS)
        items = read_frame(INGEST / "items.parquet", ITEMS)
        frame = frame[(frame["split"] == "test") & (frame["history_items"].map(len) >= HISTORY)]
        frame = frame.sample(n=min(n_rows, len(frame)), random_state=seed)
        return frame, items, f"{len(frame)} test rows of {INGEST}"
    rng = np.random.default_rng(seed)
    n_items = 200
    items = pd.DataFrame({
        "item": np.arange(n_items, dtype=np.int32),
        "title": [f"Movie number {i} ({1950 + i % 70})" for i in range(n_items)],
        "categories": [["Drama", "Comedy"][: 1 + i % 2] for i in range(n_items)],
    })
    frame = pd.DataFrame({
        "row": np.arange(n_rows), "user": rng.integers(0, 50, n_rows), "item": rng.integers(0, n_items, n_rows),
        "label": rng.integers(0, 2, n_rows),
        "history_items": [rng.integers(0, n_items, HISTORY).tolist() for _ in range(n_rows)],
        "history_labels": [rng.integers(0, 2, HISTORY).tolist() for _ in range(n_rows)],
    })
    return frame, items, f"{n_rows} synthetic rows ({INGEST} not found)"


def bench_examples(rec: RecModel, frame: pd.DataFrame, items: pd.DataFrame, seed: int):
    """Prompts as the stage-2 variants see them: v2 template, CF slots (random vectors)."""
    rng = np.random.default_rng(seed)
    n_users = int(max(frame["user"].max(), 0)) + 1
    n_items = int(items["item"].max()) + 1
    vectors = CFVectors(
        rng.normal(size=(n_users, CF_DIM)).astype(np.float32), rng.normal(size=(n_items, CF_DIM)).astype(np.float32)
    )
    catalog = build_catalog(items, None, title_words=4, keywords_per_item=0)
    encode = lambda f: build_examples(f, catalog, rec.tokenizer, get_template("v2"), HISTORY, vectors, desc="encode")  # noqa: E731
    return encode, encode(frame)


def body_linear_params(rec: RecModel) -> int:
    return sum(m.weight.numel() for m in rec.body.modules() if isinstance(m, torch.nn.Linear))


def matmul_peak_gflops(repeats: int, size: int = 2048) -> float:
    a, b = torch.randn(size, size, dtype=torch.bfloat16), torch.randn(size, size, dtype=torch.bfloat16)
    a @ b
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(seconds) / 1e9


@torch.no_grad()
def old_scores(rec: RecModel, examples, batch_size: int) -> np.ndarray:
    """Before: fp32 weights, bf16 autocast over the whole pass and the answer head, full prompts."""
    scores = np.zeros(len(examples), dtype=np.float32)
    ids = [rec.yes_id, rec.no_id]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for index in length_buckets([len(e.prompt_ids) for e in examples], batch_size):
            batch = collate([examples[i] for i in index], rec.pad_id, with_answers=False)
            hidden = rec.hidden_states(batch)
            last = hidden[torch.arange(len(index)), batch.prompt_lengths - 1]
            logits = (last @ rec.lm_head.weight[ids].T).float()  # bf16 matmul, as the old head did
            scores[index] = (logits[:, 0] - logits[:, 1]).numpy()
    return scores


@torch.no_grad()
def full_prompt_scores(rec: RecModel, examples, batch_size: int) -> np.ndarray:
    """Cast-once bf16 weights, fp32 answer logits, but every prompt run whole (no prefix reuse)."""
    from pipeline.rec.scoring import yes_logits

    scores = np.zeros(len(examples), dtype=np.float32)
    for index in length_buckets([len(e.prompt_ids) for e in examples], batch_size):
        scores[index] = yes_logits(rec, collate([examples[i] for i in index], rec.pad_id, False)).numpy()
    return scores


def timed(fn, repeats: int):
    """(median seconds over `repeats` calls, last result), after one warm-up call."""
    fn()
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def train_tokens_per_s(
    rec: RecModel, examples, batch_size: int, steps: int, autocast: bool, shared_prefix: bool = False
) -> float:
    """Optimizer steps on LoRA params (frozen backbone), tokens/s of the rows (a shared prefix
    counted per row); `autocast` = the old bf16 autocast over fp32 weights, else the weights as they
    are (cast once); `shared_prefix` = the system part run once per micro-batch."""
    trainable = [p for p in rec.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-6)
    rec.train()
    tokens, start = 0, time.perf_counter()
    for step in range(steps):
        rows = examples[step * batch_size : (step + 1) * batch_size]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if shared_prefix:
                batch, hidden = shared_prefix_states(rec, rows)
            else:
                batch = collate(rows, rec.pad_id, with_answers=True)
                hidden = rec.hidden_states(batch)
            loss, _ = rec_loss(hidden, rec, batch, REC.loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += sum(e.length for e in rows)
    rec.eval()
    return tokens / (time.perf_counter() - start)


def shared_prefix_states(rec: RecModel, rows):
    """(batch of suffixes, hidden) of a training micro-batch whose system part (identical for every
    row) runs once, with gradients, and whose suffixes attend to its KV. Not what the stages do:
    a candidate measured here (the prefix's LoRA dropout mask is shared by the batch's rows)."""
    cut = rows[0].shared_len
    if any(e.prompt_ids[:cut] != rows[0].prompt_ids[:cut] for e in rows):
        raise ValueError("bench rows do not share their system part")
    kv = prefix_kv(rec, split_example(rows[0], cut)[0])
    suffixes = [replace(split_example(e, cut)[1], answer_ids=e.answer_ids) for e in rows]
    batch = collate(suffixes, rec.pad_id, with_answers=True)
    return batch, suffix_states(rec, kv, batch)


def eval_loss_difference(rec: RecModel, rows) -> float:
    """|loss(shared prefix) - loss(full pass)| in eval mode (no dropout): the two paths agree."""
    rec.eval()
    with torch.no_grad():
        full = collate(rows, rec.pad_id, with_answers=True)
        batch, hidden = shared_prefix_states(rec, rows)
        shared = rec_loss(hidden, rec, batch, REC.loss)[0]
        return abs(float(shared) - float(rec_loss(rec.hidden_states(full), rec, full, REC.loss)[0]))


def stage2_merged_lora(rec: RecModel, examples, args) -> dict:
    """Stage 2's setting (LoRA frozen, projector trained, bf16 frozen weights): training tokens/s
    and scoring rows/s with the LoRA as peft runs it (the stages' path) vs merged into the base
    weights (no LoRA matmuls, no LoRA dropout), interleaved repeats; the scores' largest change."""
    use_precision(rec, "bfloat16")
    for name, param in rec.named_parameters():
        param.requires_grad_(name.startswith("projector."))
    steps = (rec, examples, args.train_batch, args.train_steps)
    unmerged_scores = score_examples(rec, examples, args.batch_size, "bfloat16")
    runs = {"unmerged_train": [], "merged_train": [], "unmerged_score": [], "merged_score": []}
    merged_scores = None
    for _ in range(args.repeats):
        runs["unmerged_train"].append(train_tokens_per_s(*steps, autocast=False))
        runs["unmerged_score"].append(timed(lambda: score_examples(rec, examples, args.batch_size, "bfloat16"), 1)[0])
        rec.llm.merge_adapter()
        runs["merged_train"].append(train_tokens_per_s(*steps, autocast=False))
        seconds, scores = timed(lambda: score_examples(rec, examples, args.batch_size, "bfloat16"), 1)
        runs["merged_score"].append(seconds)
        merged_scores = scores if merged_scores is None else merged_scores  # from the first merge
        rec.llm.unmerge_adapter()  # bf16 round trip: later repeats' weights drift slightly (timing only)
    median = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "unmerged_tokens_per_s": median["unmerged_train"], "merged_tokens_per_s": median["merged_train"],
        "train_speedup": median["merged_train"] / median["unmerged_train"],
        "unmerged_rows_per_s": len(examples) / median["unmerged_score"],
        "merged_rows_per_s": len(examples) / median["merged_score"],
        "score_speedup": median["unmerged_score"] / median["merged_score"],
        "max_abs_score_diff": float(np.abs(merged_scores - unmerged_scores).max()),
    }


def topn_examples(encode, n_candidates: int):
    """One user's 1 + (n_candidates - 1) candidates on the positive row's history."""
    if (INGEST / "topn_candidates.parquet").exists():
        candidates = read_frame(INGEST / "topn_candidates.parquet", TOPN_CANDIDATES)
        interactions = read_frame(INGEST / "interactions.parquet", INTERACTIONS)
        user = candidates["user"].iloc[0]
        return encode(topn_frame(candidates[candidates["user"] == user].head(n_candidates), interactions))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="rows scored and trained on")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--batch-size", type=int, default=32, help="scoring batch size")
    parser.add_argument("--train-batch", type=int, default=4, help="training micro-batch (rec.stage1/2.batch_size)")
    parser.add_argument("--train-steps", type=int, default=4, help="optimizer steps per timed training run")
    parser.add_argument("--backbone", type=Path, default=SMOLLM2, help="HF model directory to time")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as scratch:
        path, model_note = backbone(args.backbone, Path(scratch))
        rec = build_rec_model(path, REC.lora, cf_dim=CF_DIM).eval()
        for name, param in rec.llm.named_parameters():
            if "lora_B" in name:  # a trained-looking adapter (peft starts B at zero)
                torch.nn.init.normal_(param, std=0.02)
        frame, items, rows_note = bench_frames(args.rows, seed=0)
        encode, examples = bench_examples(rec, frame, items, seed=0)
        n_body = body_linear_params(rec)
        peak = matmul_peak_gflops(args.repeats * 3)
        tokens = sum(len(e.prompt_ids) for e in examples)
        result = {"model": model_note, "rows": rows_note, "threads": torch.get_num_threads(),
                  "mean_prompt_tokens": tokens / len(examples), "bf16_matmul_peak_gflops": peak,
                  "body_linear_params": n_body}

        # training first: autocast (fp32 weights), cast-once bf16, cast once + shared prefix; interleaved repeats
        runs = {"autocast": [], "cast_once": [], "shared_prefix": []}
        steps = (rec, examples, args.train_batch, args.train_steps)
        for _ in range(args.repeats):
            use_precision(rec, "float32")
            runs["autocast"].append(train_tokens_per_s(*steps, autocast=True))
            use_precision(rec, "bfloat16")
            runs["cast_once"].append(train_tokens_per_s(*steps, autocast=False))
            runs["shared_prefix"].append(train_tokens_per_s(*steps, autocast=False, shared_prefix=True))
        training = {k: statistics.median(v) for k, v in runs.items()}
        result["training"] = {
            "micro_batch": args.train_batch,
            "autocast_tokens_per_s": training["autocast"], "cast_once_tokens_per_s": training["cast_once"],
            "shared_prefix_tokens_per_s": training["shared_prefix"],
            "speedup": training["cast_once"] / training["autocast"],
            "shared_prefix_speedup": training["shared_prefix"] / training["cast_once"],
            "shared_prefix_eval_loss_abs_diff": eval_loss_difference(rec, examples[: args.train_batch]),
            "cast_once_gflops": training["cast_once"] * 4 * n_body / 1e9,
        }
        result["training"]["utilisation"] = result["training"]["cast_once_gflops"] / peak

        use_precision(rec, "float32")
        old_s, old = timed(lambda: old_scores(rec, examples, args.batch_size), args.repeats)
        use_precision(rec, "bfloat16")
        new_s, new = timed(lambda: score_examples(rec, examples, args.batch_size, "bfloat16"), args.repeats)
        use_precision(rec, "float32")
        fp32 = score_examples(rec, examples, args.batch_size, "float32")
        result["scoring"] = {
            "old_rows_per_s": len(examples) / old_s, "new_rows_per_s": len(examples) / new_s, "speedup": old_s / new_s,
            "new_gflops": tokens * 2 * n_body / new_s / 1e9,
            "distinct_scores": {"old_bf16_logits": int(len(np.unique(old))), "new": int(len(np.unique(new))),
                                "fp32_forward": int(len(np.unique(fp32))), "rows": len(examples)},
            "max_abs_diff_new_vs_fp32": float(np.abs(new - fp32).max()),
        }
        result["scoring"]["utilisation"] = result["scoring"]["new_gflops"] / peak

        candidates = topn_examples(encode, 100)
        if candidates is not None:
            use_precision(rec, "bfloat16")
            full_s, full = timed(lambda: full_prompt_scores(rec, candidates, args.batch_size), args.repeats)
            cached_s, cached = timed(lambda: score_candidates(rec, candidates, 100, "bfloat16"), args.repeats)
            result["topn"] = {
                "candidates": len(candidates), "full_prompt_candidates_per_s": len(candidates) / full_s,
                "prefix_cached_candidates_per_s": len(candidates) / cached_s, "speedup": full_s / cached_s,
                "max_abs_diff": float(np.abs(full - cached).max()),
            }
        result["stage2_merged_lora"] = stage2_merged_lora(rec, examples, args)
    write_json(result, RESULTS)
    t, s = result["training"], result["scoring"]
    print(f"model: {model_note}; rows: {rows_note}; mean prompt {result['mean_prompt_tokens']:.0f} tokens; "
          f"bf16 matmul peak {peak:.0f} GFLOP/s")
    print(f"training  autocast {t['autocast_tokens_per_s']:.0f} tok/s vs cast-once bf16 {t['cast_once_tokens_per_s']:.0f} "
          f"tok/s: {t['speedup']:.2f}x ({t['cast_once_gflops']:.0f} GFLOP/s, {t['utilisation']:.0%} of peak); "
          f"+ shared system prefix {t['shared_prefix_tokens_per_s']:.0f} tok/s: {t['shared_prefix_speedup']:.2f}x "
          f"(micro-batch {t['micro_batch']}; eval-mode loss |diff| {t['shared_prefix_eval_loss_abs_diff']:.1e})")
    print(f"scoring   old {s['old_rows_per_s']:.1f} rows/s vs new {s['new_rows_per_s']:.1f} rows/s: {s['speedup']:.2f}x "
          f"({s['new_gflops']:.0f} GFLOP/s, {s['utilisation']:.0%} of peak); distinct scores "
          f"{s['distinct_scores']}; max |new - fp32| {s['max_abs_diff_new_vs_fp32']:.3f}")
    if "topn" in result:
        n = result["topn"]
        print(f"top-N     full prompts {n['full_prompt_candidates_per_s']:.1f} vs prefix-cached "
              f"{n['prefix_cached_candidates_per_s']:.1f} candidates/s: {n['speedup']:.2f}x "
              f"(max |diff| {n['max_abs_diff']:.4f})  -> {RESULTS}")
    m = result["stage2_merged_lora"]
    print(f"stage 2   frozen LoRA as peft runs it {m['unmerged_tokens_per_s']:.0f} tok/s vs merged {m['merged_tokens_per_s']:.0f} "
          f"tok/s: {m['train_speedup']:.2f}x; scoring {m['unmerged_rows_per_s']:.1f} vs {m['merged_rows_per_s']:.1f} rows/s: "
          f"{m['score_speedup']:.2f}x; max |score change| {m['max_abs_score_diff']:.3f}")


if __name__ == "__main__":
    main()
