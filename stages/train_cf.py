"""Stage train_cf: the CoLLM-style baseline. train_text's LoRA frozen; a new projector learns to
write the CF vectors (data/cf/<cf.model>/) into the prompt's user / history / target slots.
Writes data/rec/collm/ and data/predictions/collm.parquet."""
from stages.rec_stage import run_rec_stage

if __name__ == "__main__":
    run_rec_stage("collm")
