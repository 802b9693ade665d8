"""The expert slots dvc.yaml runs and the slots the gate and the fused scoring read are the slots
params.yaml lists (DVC cannot loop inside deps, so dvc.yaml spells them out)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_gate_and_fused_scoring_read_exactly_the_params_slots():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    slots = yaml.safe_load((ROOT / "params.yaml").read_text())["experts"]["slots"]
    assert stages["expert"]["foreach"] == "${experts.slots}"
    wanted = [f"data/experts/expert_{slot}" for slot in slots]
    for name in ("gate", "thinkrec_experts"):
        read = [dep for dep in stages[name]["deps"] if str(dep).startswith("data/experts/expert_")]
        assert read == wanted, name
