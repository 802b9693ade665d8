"""Stage train_text: the TALLRec-style baseline. A new LoRA on text-only prompts (no CF slots, no
keywords). Writes data/rec/tallrec/ and data/predictions/tallrec.parquet."""
from stages.rec_stage import run_rec_stage

if __name__ == "__main__":
    run_rec_stage("tallrec")
