"""Stage train_think: the ThinkRec-style model. Continues from train_cf's LoRA + projector, training
both on keyword-augmented prompts with CF slots; each micro-batch is drawn from the verified
reasoning traces (answer = the trace) with probability rec.train_think.reasoning_prob, else from
train rows (answer = Yes/No). Writes data/rec/thinkrec/ and data/predictions/thinkrec.parquet."""
from stages.rec_stage import run_rec_stage

if __name__ == "__main__":
    run_rec_stage("thinkrec")
