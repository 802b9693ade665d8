"""The keywords and traces stages against a served teacher (`llm.backend: openai`), e.g. the
prepared SmolLM2 on vLLM's CPU server (`make serve-vllm-cpu`, docs/scale.md).

Runs in a scratch copy of the project (`--project`, holding data/ingest, data/cf, data/predictions
and data/models from a finished run) whose params.yaml it rewrites: backend openai, the served
model name, `--concurrency` requests in flight, a response cache of its own that it deletes first
(so every answer comes from the server), keywords.max_items / traces.count cut to `--max-items` /
`--traces`. While the stages run it polls the server's Prometheus /metrics for the peak of
vllm:num_requests_running (requests the engine batched at once). Writes
`--output` (bench/results/served_teacher.json). Usage:
  python bench/served_teacher.py --project /tmp/scale/proj [--base-url http://127.0.0.1:8000/v1]
      [--concurrency 16] [--max-items 128] [--traces 24] [--stages keywords traces]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from pipeline.artifacts import write_json  # noqa: E402

RUNNING = re.compile(r"^vllm:num_requests_running\{[^}]*\}\s+([0-9.eE+-]+)$", re.M)


class PeakRunning(threading.Thread):
    """Polls `metrics_url` every `interval` s; `peak` = the largest vllm:num_requests_running seen
    (None when the server exports no such metric)."""

    def __init__(self, metrics_url: str, interval: float = 0.25):
        super().__init__(daemon=True)
        self.url, self.interval, self.peak, self.stop = metrics_url, interval, None, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                text = urllib.request.urlopen(self.url, timeout=2).read().decode()
                values = [float(v) for v in RUNNING.findall(text)]
                if values:
                    self.peak = max(self.peak or 0.0, sum(values))
            except OSError:
                pass
            self.stop.wait(self.interval)


def configure(project: Path, args: argparse.Namespace) -> None:
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["llm"].update({"backend": "openai", "model": args.model, "cache_path": ".llm_cache/served.sqlite"})
    params["llm"]["openai"].update({"base_url": args.base_url, "api_key_env": None, "concurrency": args.concurrency})
    params["keywords"]["max_items"] = args.max_items
    params["traces"]["count"] = args.traces
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    (project / ".llm_cache/served.sqlite").unlink(missing_ok=True)


def run_stage(project: Path, stage: str) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=project, check=True)
    wall = time.perf_counter() - started
    llm = json.loads((project / f"metrics/{stage}.json").read_text())["llm"]
    return {
        "stage_wall_seconds": round(wall, 1),
        "calls": llm["calls"], "cache_hits": llm["cache_hits"], "retries": llm["retries"]["total"],
        "tokens_in": llm["tokens_in"], "tokens_out": llm["tokens_out"], "llm_wall_seconds": llm["wall_seconds"],
        "tokens_out_per_second": round(llm["tokens_out"] / max(llm["wall_seconds"], 1e-9), 1),
        "calls_per_second": round(llm["calls"] / max(llm["wall_seconds"], 1e-9), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="the served model name")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-items", type=int, default=128)
    parser.add_argument("--traces", type=int, default=24)
    parser.add_argument("--stages", nargs="+", default=["keywords", "traces"], choices=["keywords", "traces"])
    parser.add_argument("--output", type=Path, default=REPO / "bench/results/served_teacher.json")
    args = parser.parse_args()
    project = args.project.resolve()
    configure(project, args)
    models = json.loads(urllib.request.urlopen(f"{args.base_url}/models", timeout=10).read())
    served = [m["id"] for m in models["data"]]
    if args.model not in served:
        raise SystemExit(f"{args.base_url} serves {served}, not {args.model}")
    poller = PeakRunning(args.base_url.removesuffix("/v1") + "/metrics")
    poller.start()
    stages = {stage: run_stage(project, stage) for stage in args.stages}
    poller.stop.set()
    poller.join()
    result = {"base_url": args.base_url, "model": args.model, "concurrency": args.concurrency,
              "max_items": args.max_items, "traces": args.traces, "peak_requests_running": poller.peak,
              "stages": stages}
    write_json(result, args.output)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
