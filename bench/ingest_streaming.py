"""Benchmark: streaming ingest of a generated multi-million-line Amazon-style JSON-lines .gz file.

Prints lines/s and peak RSS of (a) the streaming reader alone, (b) the whole ingest (reader +
metadata join + filter + split + histories + samples), against a baseline in the same run:
pandas.read_json(lines=True) fully loading a 10% slice of the same file. Each measurement runs in
its own process so ru_maxrss is that measurement's peak. Writes bench/results/ingest_streaming.json.

    python bench/ingest_streaming.py [--lines 2000000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "ingest_streaming.json"
WORDS = "good great bad plot story character writing pages author ending slow fast loved hated".split()
START_2017 = 1483228800  # 2017-01-01 UTC


def generate(root: Path, lines: int, users: int, items: int, seed: int = 0) -> tuple[Path, Path]:
    """Amazon 2018-style Books.json.gz (reviews) + meta_Books.json.gz, written in chunks."""
    rng = np.random.default_rng(seed)
    reviews = root / "Books.json.gz"
    with gzip.open(reviews, "wt", encoding="utf-8", compresslevel=1) as out:
        for begin in range(0, lines, 200_000):
            size = min(200_000, lines - begin)
            user = rng.zipf(1.3, size) % users
            item = rng.zipf(1.2, size) % items
            stars = rng.integers(1, 6, size)
            stamp = START_2017 + rng.integers(0, 365 * 86400, size)
            text = rng.integers(0, len(WORDS), (size, 12))
            out.write("".join(
                f'{{"overall": {s}.0, "verified": true, "reviewTime": "x", "reviewerID": "A{u:09d}", '
                f'"asin": "B{i:09d}", "reviewerName": "n", "reviewText": "{" ".join(WORDS[w] for w in t)}", '
                f'"summary": "ok", "unixReviewTime": {ts}}}\n'
                for u, i, s, ts, t in zip(user.tolist(), item.tolist(), stars.tolist(), stamp.tolist(), text.tolist())
            ))
    meta = root / "meta_Books.json.gz"
    with gzip.open(meta, "wt", encoding="utf-8", compresslevel=1) as out:
        for i in range(items):
            out.write(json.dumps({"asin": f"B{i:09d}", "title": f"Book {i}", "category": ["Books", "Fiction"],
                                  "description": ["A generated description."], "brand": "Press"}) + "\n")
    return reviews, meta


def ingest_params(root: Path):
    """params.yaml's ingest section on the generated Books files (label 5, one-pass 5-core filter,
    last months halved). Subsets and top-N users stay what this benchmark has always measured: a
    quarter of the valid / test users with all their rows, and every test user."""
    import yaml

    from pipeline.ingest.config import IngestParams
    from pipeline.profiles import overlay

    quarter = {"user_fraction": 0.25, "max_rows_per_user": None, "max_rows": None}
    return IngestParams.model_validate(overlay(yaml.safe_load((REPO / "params.yaml").read_text())["ingest"], {
        "source": {"format": "amazon", "path": str(root), "name": "Books"},
        "label_threshold": 5, "on_unknown_item": "skip",
        "filter": {"mode": "one_pass", "min_user_interactions": 5, "min_item_interactions": 5},
        "split": {"mode": "last_months_halved", "train_months": 10},
        "subsets": {"valid_small": quarter, "test_small": quarter}, "topn_users": None,
    }))


def child(mode: str, root: Path, slice_path: Path) -> dict:
    """One measurement inside this process; returns seconds, rows and peak RSS (MiB)."""
    import pandas  # noqa: F401  (every mode imports the same libraries before measuring)
    import pyarrow  # noqa: F401

    from pipeline.ingest import build  # noqa: F401

    params = ingest_params(root) if mode == "ingest" else None
    _reset_peak_rss()
    before_mib = psutil.Process().memory_info().rss / 2**20
    began = time.perf_counter()
    if mode == "reader":
        from pipeline.ingest.columns import collect_interactions
        from pipeline.ingest.formats import FORMATS
        from pipeline.ingest.lines import LineIssues

        columns, _ = collect_interactions(FORMATS["amazon"].read_interactions, root / "Books.json.gz",
                                          LineIssues(), None, None)
        rows = len(columns)
    elif mode == "ingest":
        from pipeline.ingest.build import run_ingest

        rows = run_ingest(params).card["read"]["interaction_rows_parsed"]
    elif mode == "pandas":
        import pandas as pd

        rows = len(pd.read_json(slice_path, lines=True, compression="gzip"))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - began
    peak_mib = _peak_rss_mib()
    return {"seconds": seconds, "rows": rows, "peak_rss_mib": peak_mib, "growth_mib": peak_mib - before_mib}


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so the peak covers only the measured work
    (not transient allocations while importing libraries)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux or not permitted: the peak then includes imports


def _peak_rss_mib() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux/BSD: KiB


def measure(mode: str, root: Path, slice_path: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--root", str(root), "--slice", str(slice_path)],
            cwd=REPO, capture_output=True, text=True, check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(run["seconds"] for run in runs)
    rows = runs[0]["rows"]
    return {
        "rows": rows, "median_seconds": round(seconds, 2),
        "lines_per_second": round(rows / seconds) if rows else None,
        "peak_rss_mib": round(statistics.median(run["peak_rss_mib"] for run in runs), 1),
        # peak RSS minus RSS after imports: what the measured work itself added
        "peak_growth_mib": round(statistics.median(run["growth_mib"] for run in runs), 1), "repeats": repeats,
    }


def write_slice(reviews: Path, slice_path: Path, lines: int) -> None:
    with gzip.open(reviews, "rt", encoding="utf-8") as source, gzip.open(slice_path, "wt", compresslevel=1) as out:
        for number, line in enumerate(source):
            if number >= lines:
                break
            out.write(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--slice", type=Path)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(REPO))
        print(json.dumps(child(args.child, args.root, args.slice)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        reviews, _ = generate(root, args.lines, users=args.lines // 10, items=args.lines // 40)
        slice_path = root / "slice.json.gz"
        write_slice(reviews, slice_path, args.lines // 10)
        print(f"generated {args.lines:,} review lines ({reviews.stat().st_size / 2**20:.0f} MiB gz) "
              f"in {time.perf_counter() - began:.0f}s")
        results = {
            "lines": args.lines,
            "reviews_gz_mib": round(reviews.stat().st_size / 2**20, 1),
                    "reader": measure("reader", root, slice_path, args.repeats),
            "ingest": measure("ingest", root, slice_path, 1),
            "pandas_read_json_slice": measure("pandas", root, slice_path, args.repeats),
        }
    reader, pandas_run = results["reader"], results["pandas_read_json_slice"]
    pandas_per_line = pandas_run["peak_growth_mib"] / pandas_run["rows"]
    reader_per_line = max(reader["peak_growth_mib"], 1.0) / reader["rows"]  # >= 1 MiB: RSS noise
    results["memory_per_line_ratio_pandas_over_reader"] = round(pandas_per_line / reader_per_line, 1)
    results["pandas_full_file_estimated_growth_mib"] = round(pandas_per_line * args.lines)
    for name in ("reader", "ingest", "pandas_read_json_slice"):
        run = results[name]
        print(f"{name:>24}: {run['rows']:>9,} lines in {run['median_seconds']:>6.1f}s (median of "
              f"{run['repeats']}) = {run['lines_per_second'] or 0:>8,} lines/s, peak RSS {run['peak_rss_mib']:.0f} MiB "
              f"(+{run['peak_growth_mib']:.0f} MiB over the interpreter with its imports)")
    print(f"memory per line: pandas.read_json / streaming reader = "
          f"{results['memory_per_line_ratio_pandas_over_reader']}x; pandas on the whole file would add "
          f"~{results['pandas_full_file_estimated_growth_mib']:,} MiB")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
