"""LLM backend throughput, each against its own baseline in the same run.

- openai: requests/s against a loopback OpenAI-compatible server with a fixed per-request delay,
  `--concurrency` requests in flight vs one at a time.
- local: generated tokens/s of the prepared SmolLM2 (bf16, CPU), batch 1 vs `--batch-size`.

Medians over `--repeats` (the two modes alternate, so background load hits both alike). Writes
bench/results/llm_throughput.json. Usage: python bench/llm_throughput.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from llm_fake_server import FakeChatServer  # noqa: E402
from pipeline.artifacts import write_json  # noqa: E402
from pipeline.llm.chat import SamplingParams, chat  # noqa: E402
from pipeline.llm.config import LLMConfig, LocalConfig  # noqa: E402
from pipeline.params import load_section  # noqa: E402

PREPARED = REPO / "data" / "models" / "smollm2-135m-instruct"
ITEMS = ["Toy Story (1995)", "Fargo (1996)", "Heat (1995)", "Babe (1995)", "Casino (1995)",
         "Jumanji (1995)", "Sabrina (1995)", "GoldenEye (1995)", "Seven (1995)", "Clueless (1995)"]


def bench_openai(requests: int, delay: float, concurrency: int, repeats: int) -> dict:
    from pipeline.llm.openai_backend import OpenAIBackend

    rates = {1: [], concurrency: []}
    base = load_section("llm", LLMConfig, REPO / "params.yaml").openai  # retries, timeouts: params.yaml's
    with FakeChatServer(delay=delay) as server:
        for repeat in range(repeats):
            for workers in rates:
                config = base.model_copy(update={"base_url": server.base_url, "api_key_env": None,
                                                 "concurrency": workers})
                backend = OpenAIBackend("bench", config)
                batch = [chat(("user", f"r{repeat} w{workers} q{i}")) for i in range(requests)]
                started = time.perf_counter()
                backend.complete(batch)
                rates[workers].append(requests / (time.perf_counter() - started))
    sequential, concurrent = statistics.median(rates[1]), statistics.median(rates[concurrency])
    return {
        "requests": requests, "server_delay_seconds": delay, "concurrency": concurrency,
        "sequential_requests_per_second": round(sequential, 2),
        "concurrent_requests_per_second": round(concurrent, 2),
        "ratio": round(concurrent / sequential, 2),
        "runs": {str(k): [round(v, 2) for v in vs] for k, vs in rates.items()},
    }


def bench_local(model_dir: Path, prompts: int, max_tokens: int, batch_size: int, repeats: int) -> dict:
    from pipeline.llm.local_backend import LocalBackend

    backend = LocalBackend(str(model_dir), LocalConfig(batch_size=1, dtype="bfloat16", threads=2))
    sampling = SamplingParams(max_tokens=max_tokens)
    requests = [
        chat(("user", f"List keywords for the movie {ITEMS[i % len(ITEMS)]}."), sampling=sampling)
        for i in range(prompts)
    ]
    backend.complete(requests[:1])  # warm-up
    rates = {1: [], batch_size: []}
    for _ in range(repeats):
        for size in rates:
            backend.batch_size = size
            started = time.perf_counter()
            answers = backend.complete(requests)
            rates[size].append(sum(a.tokens_out for a in answers) / (time.perf_counter() - started))
    single, batched = statistics.median(rates[1]), statistics.median(rates[batch_size])
    return {
        "model": str(model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir),
        "dtype": "bfloat16", "prompts": prompts, "max_tokens": max_tokens, "batch_size": batch_size,
        "batch1_tokens_per_second": round(single, 2),
        "batched_tokens_per_second": round(batched, 2),
        "ratio": round(batched / single, 2),
        "runs": {str(k): [round(v, 2) for v in vs] for k, vs in rates.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.25, help="server seconds per request")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    openai_result = bench_openai(args.requests, args.delay, args.concurrency, args.repeats)
    print(f"openai: {openai_result['sequential_requests_per_second']} req/s one at a time,"
          f" {openai_result['concurrent_requests_per_second']} req/s with {args.concurrency} in flight"
          f" -> x{openai_result['ratio']} (server delay {args.delay} s, median of {args.repeats})")

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = PREPARED
        if not (PREPARED / "config.json").exists():
            from pipeline.llm.prepare import prepare_model

            model_dir = Path(scratch) / "smollm2"
            prepare_model(None, model_dir)
        local_result = bench_local(model_dir, args.prompts, args.max_tokens, args.batch_size, args.repeats)
    print(f"local: {local_result['batch1_tokens_per_second']} tok/s at batch 1,"
          f" {local_result['batched_tokens_per_second']} tok/s at batch {args.batch_size}"
          f" -> x{local_result['ratio']} (SmolLM2-135M bf16, median of {args.repeats})")

    write_json({
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
        "openai": openai_result,
        "local": local_result,
    }, REPO / "bench" / "results" / "llm_throughput.json")


if __name__ == "__main__":
    main()
