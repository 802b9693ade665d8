"""Every params section is checked with bounds before a stage reads data or replaces an output,
and an error names the key in full (`cf.sasrec.max_length`) on one line; a stage reads another
section's keys through that section's own model, so it gets the same checks."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from params_base import PARAMS_FILE
from pipeline.cf.config import CFParams
from pipeline.experts.params import ExpertsParams, GateParams
from pipeline.ingest.config import IngestParams
from pipeline.profiles import overlay
from stages.evaluate import EvaluateParams
from pipeline.explain.params import ExplainParams
from stages.keywords import KeywordParams
from pipeline.params import load_section
from stages.prepare_model import PrepareModelParams

# (dotted key, a bad value, the model of its section)
BAD = [
    ("cf.train.max_epochs", 0, CFParams), ("cf.train.batch_size", -1, CFParams), ("cf.train.patience", 0, CFParams),
    ("cf.train.threads", 0, CFParams), ("cf.mf.dim", 0, CFParams), ("cf.mf.lr", 0.0, CFParams),
    ("cf.lightgcn.layers", -1, CFParams), ("cf.lightgcn.weight_decay", -0.1, CFParams),
    ("cf.sasrec.max_length", 1, CFParams), ("cf.sasrec.blocks", 0, CFParams), ("cf.sasrec.dropout", 1.0, CFParams),
    ("cf.sasrec.heads", 3, CFParams),  # does not divide hidden 64
    ("cf.model", "bpr", CFParams), ("cf.models", [], CFParams), ("cf.chance_auc", 1.5, CFParams),
    ("evaluate.bootstrap.resamples", 0, EvaluateParams), ("evaluate.roc_points", 1, EvaluateParams),
    ("evaluate.ks", [5, 0], EvaluateParams), ("evaluate.subset", "tset_small", EvaluateParams),
    ("evaluate.models", [], EvaluateParams),
    ("explain.rows", 0, ExplainParams), ("explain.min_new_tokens", 100, ExplainParams),
    ("explain.dtype", "float8", ExplainParams),
    ("experts.slots", [0], ExpertsParams), ("experts.slots", [0, 1, 1], ExpertsParams),
    ("experts.slots", [0, -1], ExpertsParams), ("gate.subset", "test_small", GateParams),
    ("experts.cluster_users", "valid", ExpertsParams), ("experts.train.prompt", "ids", ExpertsParams),
    ("prepare_model.threads", 0, PrepareModelParams), ("keywords.min_keywords", 11, KeywordParams),
    ("ingest.max_text_chars", 0, IngestParams), ("ingest.label_threshold", math.nan, IngestParams),
]


def nested(key: str, value) -> dict:
    *parents, last = key.split(".")
    tree = {last: value}
    for part in reversed(parents):
        tree = {part: tree}
    return tree


def write_params(root: Path, key: str, value) -> Path:
    params = overlay(yaml.safe_load(PARAMS_FILE.read_text()), nested(key, value))
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root / "params.yaml"


@pytest.mark.parametrize(("key", "value", "model"), BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_a_bad_value_is_an_error_naming_the_key(tmp_path, key, value, model):
    path = write_params(tmp_path, key, value)
    with pytest.raises(ValueError) as raised:
        load_section(key.split(".")[0], model, path)
    message = str(raised.value)
    assert key in message and "\n" not in message


def test_every_section_of_params_yaml_still_loads():
    for name, model in [("cf", CFParams), ("evaluate", EvaluateParams), ("explain", ExplainParams),
                        ("experts", ExpertsParams), ("gate", GateParams), ("keywords", KeywordParams),
                        ("prepare_model", PrepareModelParams), ("ingest", IngestParams)]:
        load_section(name, model, PARAMS_FILE)


def test_cf_stage_with_zero_epochs_stops_before_reading_or_writing(tmp_path, monkeypatch):
    """Before: 0 epochs trained nothing and wrote an untrained model that every LLM stage reads."""
    from stages import cf

    write_params(tmp_path, "cf.train.max_epochs", 0)
    monkeypatch.chdir(tmp_path)  # no data/ingest here: the params check must come first
    with pytest.raises(ValueError, match=r"cf\.train\.max_epochs: Input should be greater than or equal to 1"):
        cf.main("sasrec")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("stage", "key", "value"), [
    ("cf_select", "cf.train.max_epochs", 0),  # reads cf.model: through the whole cf section
    ("cf_select", "cf.sasrec.max_length", 0),
    ("cf_select", "cf.model", "bpr"),
    ("cf_select", "evaluate.selection_subset", "tset_small"),  # the one evaluate key it reads
    ("baselines", "rec.prompt.history_items", -1),  # reads rec.prompt through the rec stages' model
    ("baselines", "rec.prompt.history_items", 0),  # valid for prompts, but the baseline needs one item
])
def test_a_stage_reads_another_sections_keys_through_its_checks(tmp_path, monkeypatch, stage, key, value):
    import importlib

    main = importlib.import_module(f"stages.{stage}").main
    write_params(tmp_path, key, value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        main()
    assert not (tmp_path / "data").exists()
