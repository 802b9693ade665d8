"""The repo's params.yaml as the base of every params model a test builds: the models hold no
defaults of their own, so a test names only the keys it changes and params.yaml fills the rest."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.profiles import overlay

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"


def section(name: str, **overrides) -> dict:
    """params.yaml's section at the dotted `name` ("ingest", "rec.lora") with `overrides` laid over
    it: a nested dict merges key by key ({"split": {"train_months": 1}} keeps the split's mode), any
    other value replaces. A fresh dict each call, safe to modify."""
    node = yaml.safe_load(PARAMS_FILE.read_text())
    for part in name.split("."):
        node = node[part]
    return overlay(node, overrides)
