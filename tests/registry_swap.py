"""Run a stage module in a subprocess with pipeline.registry.MODELS replaced: the tests' own small
model lists (the stages read the models from the registry, not from params)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ("import pickle, runpy, sys; from pipeline import registry; "
          "registry.MODELS = pickle.loads(bytes.fromhex(sys.argv[1])); registry.check(registry.MODELS); "
          "sys.argv = [sys.argv[2], *sys.argv[3:]]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def run_with_models(directory: Path, module: str, models: tuple, *args: str) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` in `directory` with `models` as the registry."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", LAUNCH, pickle.dumps(models).hex(), module, *args],
                          cwd=directory, env=env, capture_output=True, text=True)
