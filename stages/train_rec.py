"""Stage <variant> for each LLM-recommender variant of the registry (pipeline/registry.py, family
`llm`; dvc.yaml names the stage after the variant): python -m stages.train_rec <variant>

A stage-1 variant (tallrec, thinkrec_stage1, thinkrec_no_traces_stage1) trains a new LoRA on text
prompts, ThinkRec's with keyword-enriched items and reasoning-trace batches. A stage-2 variant
(collm, thinkrec, thinkrec_no_traces) freezes its stage-1 LoRA and trains a new projector that
writes CF vectors into the prompt's slots.
"""
import sys

from pipeline.errors import run_stage
from stages.rec_stage import run_rec_stage

if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m stages.train_rec <variant>")
    run_stage(run_rec_stage, sys.argv[1])
