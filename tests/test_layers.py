"""The library's floors: pipeline/rec is below the experts, RDRec and the stages (it imports none of
them), and the params models are torch-free, so a stage that reads one key imports no torch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stages.code_deps import imported_names

ROOT = Path(__file__).resolve().parents[1]
ABOVE_REC = ("pipeline.experts", "pipeline.rdrec", "stages")
PARAMS_MODULES = ("pipeline.params", "pipeline.rec.params", "pipeline.experts.params", "pipeline.rdrec.params",
                  "pipeline.cf.config", "pipeline.llm.config", "pipeline.ingest.config", "pipeline.explain.params",
                  "pipeline.recommend.params", "pipeline.hard_scores")


def test_rec_imports_nothing_from_the_floors_above_it():
    upward = {str(path.relative_to(ROOT)): sorted(name for name in imported_names(path.relative_to(ROOT))
                                                  if name.startswith(ABOVE_REC))
              for path in sorted((ROOT / "pipeline/rec").glob("*.py"))}
    assert {file: names for file, names in upward.items() if names} == {}


def test_params_models_import_no_torch():
    script = f"import sys\nfor m in {PARAMS_MODULES!r}: __import__(m)\nprint(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_stage_that_reads_one_rec_key_imports_no_torch():
    done = subprocess.run([sys.executable, "-c", "import sys, stages.baselines; print('torch' in sys.modules)"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
