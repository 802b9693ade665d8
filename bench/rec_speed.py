"""Benchmark: one-pass Yes-logit scoring vs generate()-based scoring, and training tokens/s at
batch 1 vs the batched default, in one run on the same rows.

The reference scores a row by calling generate() for 16 tokens and reading the first step's "Yes"
logit; pipeline.rec.scoring runs the body once and applies lm_head to one position. Both are
timed here on the same prompts (CF slots filled), the same batches, fp32 weights under bf16
autocast (as the stages run); the scores they give are compared too. Training: `train_rec_model` for a few optimizer steps at micro-batch 1
(more accumulation) vs the default micro-batch, same rows per optimizer step.

Backbone: the prepared SmolLM2 (data/models/smollm2-135m-instruct) when present, else a tiny
random Llama (say so in the output). Rows: test rows of data/ingest when present, else synthetic.
Run from the project root: `python bench/rec_speed.py` (writes bench/results/rec_speed.json).
"""
from __future__ import annotations

import argparse
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
from pipeline.rec.batching import length_buckets  # noqa: E402
from pipeline.rec.examples import CFVectors, build_catalog, build_examples  # noqa: E402
from pipeline.rec.model import LoraParams, RecModel, build_rec_model  # noqa: E402
from pipeline.rec.losses import LossParams  # noqa: E402
from pipeline.rec.prompts import get_template  # noqa: E402
from pipeline.rec.scoring import autocast_context, generation_inputs, score_examples  # noqa: E402
from pipeline.rec.training import TrainParams, train_rec_model  # noqa: E402
from pipeline.schemas import INTERACTIONS, ITEMS  # noqa: E402

SMOLLM2 = Path("data/models/smollm2-135m-instruct")
INGEST = Path("data/ingest")
RESULTS = Path("bench/results/rec_speed.json")
CF_DIM = 64  # random CF vectors: their values do not change the timings
HISTORY = 10


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


def build_bench_examples(rec: RecModel, frame: pd.DataFrame, items: pd.DataFrame, seed: int):
    rng = np.random.default_rng(seed)
    n_users = int(max(frame["user"].max(), 0)) + 1
    n_items = int(items["item"].max()) + 1
    vectors = CFVectors(
        rng.normal(size=(n_users, CF_DIM)).astype(np.float32), rng.normal(size=(n_items, CF_DIM)).astype(np.float32)
    )
    catalog = build_catalog(items, None, title_words=12, keywords_per_item=0)
    return build_examples(frame, catalog, rec.tokenizer, get_template("v1"), HISTORY, vectors, desc="encode")


@torch.no_grad()
def generate_scores(rec: RecModel, examples, batch_size: int, new_tokens: int) -> np.ndarray:
    """The reference's way: generate() `new_tokens` tokens, keep the first step's "Yes" logit
    (minus the "No" logit when the model scores that way, so both methods give the same number)."""
    scores = np.zeros(len(examples), dtype=np.float32)
    eos = rec.tokenizer.eos_token_id
    minus_no = getattr(rec, "answer_logit_kind", "yes") == "yes_minus_no"
    with autocast_context("bfloat16"):
        for index in length_buckets([len(e.prompt_ids) for e in examples], batch_size):
            inputs = generation_inputs(rec, [examples[i] for i in index])
            out = rec.llm.generate(
                **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                pad_token_id=rec.pad_id, eos_token_id=eos, output_logits=True, return_dict_in_generate=True,
            )
            first = out.logits[0].float()  # (B, V) raw logits of the first answer position
            score = first[:, rec.yes_id] - (first[:, rec.no_id] if minus_no else 0.0)
            scores[index] = score.numpy()
    return scores


def timed(fn, examples, repeats: int) -> tuple[float, object]:
    """(median seconds of `fn(examples)` over `repeats` calls, last result), after a warm-up call
    on two examples (first-call allocations and kernel selection stay out of the timings)."""
    fn(examples[:2])
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(examples)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def bench_scoring(rec: RecModel, examples, args) -> dict:
    """Both methods as the rec stages run: fp32 weights under bf16 autocast."""
    one_pass_s, one_pass_scores = timed(
        lambda ex: score_examples(rec, ex, args.batch_size, "bfloat16"), examples, args.repeats
    )
    generate_s, generated = timed(
        lambda ex: generate_scores(rec, ex, args.batch_size, args.gen_tokens), examples, args.repeats
    )
    n = len(examples)
    return {
        "rows": n, "batch_size": args.batch_size, "generate_new_tokens": args.gen_tokens,
        "one_pass_samples_per_s": n / one_pass_s, "generate_samples_per_s": n / generate_s,
        "speedup_one_pass_over_generate": generate_s / one_pass_s,
        "max_abs_score_diff": float(np.abs(one_pass_scores - generated).max()),
        "score_correlation": float(np.corrcoef(one_pass_scores, generated)[0, 1]) if n > 1 else 1.0,
    }


def training_tokens_per_s(rec: RecModel, examples, batch_size: int, grad_accum: int, steps: int) -> float:
    params = TrainParams(
        steps=steps, batch_size=batch_size, grad_accum=grad_accum, warmup_steps=1, eval_every=0,
        probe_rows=1, lr=1e-5, seed=0,
    )
    log = train_rec_model(rec, examples, [], params, LossParams())
    return sum(step["tokens"] for step in log["steps"]) / log["train_seconds"]


def bench_training(rec: RecModel, examples, args) -> dict:
    default = TrainParams()
    rows_per_step = default.batch_size * default.grad_accum
    runs = {"batch1": [], "batched": []}
    for _ in range(args.repeats):  # interleaved, so load changes on the shared CPU hit both alike
        runs["batch1"].append(training_tokens_per_s(rec, examples, 1, rows_per_step, args.train_steps))
        runs["batched"].append(
            training_tokens_per_s(rec, examples, default.batch_size, default.grad_accum, args.train_steps)
        )
    batch1, batched = statistics.median(runs["batch1"]), statistics.median(runs["batched"])
    return {
        "rows_per_optimizer_step": rows_per_step, "steps_per_run": args.train_steps,
        "batched_micro_batch": default.batch_size,
        "batch1_tokens_per_s": batch1, "batched_tokens_per_s": batched,
        "speedup_batched_over_batch1": batched / batch1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16, help="rows scored and trained on")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--batch-size", type=int, default=8, help="scoring batch size, both methods")
    parser.add_argument("--gen-tokens", type=int, default=16, help="tokens generate() makes (reference: 16)")
    parser.add_argument("--train-steps", type=int, default=1, help="optimizer steps per training run")
    parser.add_argument("--backbone", type=Path, default=SMOLLM2, help="HF model directory to time")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as scratch:
        path, model_note = backbone(args.backbone, Path(scratch))
        rec = build_rec_model(path, LoraParams(), cf_dim=CF_DIM)
        frame, items, rows_note = bench_frames(args.rows, seed=0)
        examples = build_bench_examples(rec, frame, items, seed=0)
        started = time.perf_counter()
        training = bench_training(rec, examples, args)  # fp32 weights + bf16 autocast, as the stages train
        print(f"training timed in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        rec.eval()
        scoring = bench_scoring(rec, examples, args)
        print(f"scoring timed in {time.perf_counter() - started:.0f} s", flush=True)
    prompt_tokens = [len(e.prompt_ids) for e in examples]
    result = {
        "model": model_note, "rows": rows_note, "median_prompt_tokens": float(np.median(prompt_tokens)),
        "repeats": args.repeats, "threads": torch.get_num_threads(),
        "dtype": "fp32 weights + bf16 autocast (as the stages run)",
        "scoring": scoring, "training": training,
    }
    write_json(result, RESULTS)
    print(f"model: {model_note}; rows: {rows_note}; median prompt {result['median_prompt_tokens']:.0f} tokens")
    print(
        f"scoring  one-pass {scoring['one_pass_samples_per_s']:.2f} samples/s vs generate({args.gen_tokens}) "
        f"{scoring['generate_samples_per_s']:.2f} samples/s: {scoring['speedup_one_pass_over_generate']:.1f}x "
        f"(max |score diff| {scoring['max_abs_score_diff']:.3f})"
    )
    print(
        f"training batch 1 {training['batch1_tokens_per_s']:.0f} tokens/s vs batch "
        f"{training['batched_micro_batch']} {training['batched_tokens_per_s']:.0f} tokens/s: "
        f"{training['speedup_batched_over_batch1']:.2f}x  -> {RESULTS}"
    )


if __name__ == "__main__":
    main()
