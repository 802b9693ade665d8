"""Stage train_rec@<variant>: one LLM-recommender variant (pipeline/rec/variants.py).

Stage 1 (tallrec, thinkrec_lora, thinkrec_no_traces_lora, thinkrec_no_keywords_lora): a new LoRA on
text prompts, ThinkRec's with keyword-enriched items and reasoning-trace batches. Stage 2 (collm,
thinkrec, thinkrec_no_traces, thinkrec_no_keywords): the stage-1 LoRA frozen, a new projector writes
CF vectors into the prompt's slots. Usage: python -m stages.train_rec <variant>
"""
import sys

from pipeline.errors import run_stage
from stages.rec_stage import run_rec_stage

if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m stages.train_rec <variant>")
    run_stage(run_rec_stage, sys.argv[1])
