"""Tiny real-shaped inputs for the LLM-recommender tests: a randomly initialised Llama with a
byte-level BPE tokenizer trained on the test's own text (ChatML template), and ingest / CF /
keyword / trace artifacts for a handful of users and items."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from params_base import section
from pipeline import schemas
from pipeline.artifacts import write_frame
from tiny_ingest import write_cf_selection

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TITLES = [f"Movie {name} Story" for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel")]
CF_DIM = 8


def write_tiny_model(path: Path, seed: int = 0, layers: int = 2, max_positions: int = 512) -> Path:
    """Save a `layers`-layer (default 2), 32-hidden Llama + tokenizer loadable by AutoModelForCausalLM/AutoTokenizer."""
    corpus = TITLES + ["You are a recommender. Answer Yes or No.", "User. Items rated before, oldest first:",
                       "liked not liked Target Will the user like the target? Yes No drama comedy action"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus * 3, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>",
                                        bos_token="<|im_start|>")
    tokenizer.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        initializer_range=0.2,  # larger than the default 0.02 so soft tokens visibly move the output
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_tiny_artifacts(root: Path, seed: int = 0) -> None:
    """data/ingest, data/cf/mf (selected: data/cf_selected), data/keywords, data/traces under `root`
    (6 users x 8 items)."""
    rng = np.random.default_rng(seed)
    users, items = 6, len(TITLES)
    rows = []
    history: dict[int, list[tuple[int, int]]] = {u: [] for u in range(users)}
    for step in range(users * items):
        user, item = step % users, (step * 5 + step // users) % items
        label = int((user + item) % 2 == 0)  # a pattern the CF vectors below encode
        past = history[user]
        split = "train" if step < 30 else ("valid" if step < 39 else "test")
        rows.append((step, user, item, float(4 * label + 1), label, 1000 + step, split,
                     [i for i, _ in past], [v for _, v in past], None))
        past.append((item, label))
    frame = pd.DataFrame(rows, columns=schemas.INTERACTIONS.names)
    ingest = root / "data/ingest"
    write_frame(frame, ingest / "interactions.parquet", schemas.INTERACTIONS)
    write_frame(pd.DataFrame({"item": range(items), "raw_id": [str(i) for i in range(items)], "title": TITLES,
                              "categories": [["drama", "comedy"][i % 2 :] for i in range(items)],
                              "description": "", "extra": ""}), ingest / "items.parquet", schemas.ITEMS)
    subsets = [("valid_small", r) for r in range(30, 39)] + [("test_small", r) for r in range(39, 48)]
    write_frame(pd.DataFrame(subsets, columns=["subset", "row"]), ingest / "subsets.parquet", schemas.SUBSET_ROWS)
    parity = lambda n: np.array([[1.0 if k % 2 == 0 else -1.0] for k in range(n)], dtype=np.float32)
    user_vec = np.hstack([parity(users), rng.normal(size=(users, CF_DIM - 1))]).astype(np.float32)
    item_vec = np.hstack([parity(items), rng.normal(size=(items, CF_DIM - 1))]).astype(np.float32)
    cf = root / "data/cf/mf"
    write_frame(pd.DataFrame({"user": range(users), "vector": list(user_vec)}), cf / "user_vectors.parquet",
                schemas.USER_VECTORS)
    write_frame(pd.DataFrame({"item": range(items), "vector": list(item_vec)}), cf / "item_vectors.parquet",
                schemas.ITEM_VECTORS)
    write_cf_selection(root, "mf")
    write_frame(pd.DataFrame({"item": range(items), "keywords": [["action", "drama"]] * items,
                              "source": "llm"}), root / "data/keywords/item_keywords.parquet", schemas.ITEM_KEYWORDS)
    topn = []  # per test user: its last test item + 4 items it never rated, the last row's history
    for user, rows in frame[frame["split"] == "test"].groupby("user"):
        seen = set(frame.loc[frame["user"] == user, "item"])
        negatives = [i for i in range(items) if i not in seen][:4]
        last = rows.iloc[-1]
        topn += [(user, int(last["item"]), 1, int(last["row"]))] + [(user, i, 0, int(last["row"])) for i in negatives]
    write_frame(pd.DataFrame(topn, columns=["user", "item", "positive", "row"]), ingest / "topn_candidates.parquet",
                schemas.TOPN_CANDIDATES)
    traces = frame[frame["split"] == "train"].head(4)
    write_frame(pd.DataFrame({
        "row": traces["row"], "label": traces["label"],
        "trace": ["Yes. The user liked similar stories." if v else "No. The user disliked such titles." for v in traces["label"]],
        "rounds": 1, "tokens_in": 10, "tokens_out": 8,
    }), root / "data/traces/traces.parquet", schemas.TRACES)


def tiny_params(backbone: Path, steps: int = 2) -> dict:
    """A params.yaml body for the rec stages on the tiny model (2 steps, everything small)."""
    # the 30 train rows split 15 / 15 between the stages, in packs of up to 2 rows
    train = {"train_rows": 15, "steps": steps, "epochs": None, "steps_per_epoch": None, "patience": None,
             "batch_size": 2, "grad_accum": 4, "lr": 0.01, "min_lr": 0.0, "warmup_lr": None, "weight_decay": 0.0,
             "warmup_steps": 1, "reasoning_share": 0.5, "eval_every": 0, "probe_rows": 15, "dtype": "float32",
             "seed": 7}
    return {
        "cf": section("cf", model="mf"),
        "ranking": section("ranking", retrieve_k=4),  # the full-catalogue re-ranking of reported variants
        "rec": {
            "backbone": str(backbone), "threads": 1, "device": "cpu", "answer_logit": "yes_minus_no",
            "prompt": {"version": "v2", "history_items": 3, "title_words": 3, "keywords_per_item": 2,
                       "max_answer_tokens": 16, "cf_slots": {}},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "layers": None},
            "projector": {"expansion": 2, "match_embedding_norm": True},
            "loss": {"bce_weight_single": 0.9, "bce_weight_multi": 0.1},
            "scoring": {"batch_size": 4, "topn_batch_size": 8, "selection": "weighted", "valid": True},
            "packing": {"targets": 2, "max_span_seconds": 10, "seed": 3},
            "stage1": train, "stage2": {**train, "reasoning_share": 0.0, "lr": 0.002},
            "overrides": {},
        },
    }


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params))
