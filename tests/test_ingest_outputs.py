"""The ingest stage's outputs as a whole: a run killed (SIGKILL) at any write leaves the previous
data/ingest or none, never a mix, and the next run removes what it left behind; modes follow the
umask; identical inputs give identical bytes in any checkout (no absolute paths); the embedded
default is checked against its pin."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_recbole
import yaml
from params_base import section

from pipeline.ingest.build import run_ingest
from pipeline.ingest.config import IngestParams
from pipeline.ingest.lines import IngestError
from pipeline.provenance import ingest_fingerprint

REPO = Path(__file__).resolve().parents[1]
PIN = REPO / "pipeline/ingest/ml-100k.embedded.json"

# Runs the ingest stage, but stops (prints, then sleeps until killed) right after the N-th call
# of `THINKREC_TEST_HOOK` (pq.write_table or os.replace), so the test can SIGKILL it there.
DRIVER = """
import os, sys, time
import pyarrow.parquet as pq
import stages.ingest

name, stop_after = os.environ["THINKREC_TEST_HOOK"].split(":")
module, attribute = (pq, "write_table") if name == "write_table" else (os, "replace")
real, calls = getattr(module, attribute), []

def hooked(*args, **kwargs):
    result = real(*args, **kwargs)
    calls.append(args)
    if len(calls) == int(stop_after):
        print("stopped", flush=True)
        time.sleep(600)
    return result

setattr(module, attribute, hooked)
stages.ingest.main()
"""


def make_project(root: Path, **ingest) -> Path:
    """A project dir with tiny raw files under raw/ and params.yaml's ingest section (overrides)."""
    (root / "raw").mkdir(parents=True)
    tiny_recbole.write_tiny_recbole(root / "raw", users=30, rows_per_user=12, items=40, days=89, seed=11)
    set_ingest(root, **ingest)
    return root


def set_ingest(root: Path, **ingest) -> None:
    section = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]
    section["source"].update(path="raw", name="tiny")
    section["split"].update(train_months=1, valid_months=1, test_months=1)
    section.update(topn_negatives=20, **ingest)
    (root / "params.yaml").write_text(yaml.safe_dump({"ingest": section}))


def run_stage(root: Path, umask: int = 0o022, hook: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if hook is None:
        return subprocess.run([sys.executable, "-m", "stages.ingest"], cwd=root, env=env, capture_output=True,
                              text=True, timeout=120, preexec_fn=lambda: os.umask(umask))
    process = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=root, env={**env, "THINKREC_TEST_HOOK": hook},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    process.kill()  # SIGKILL: no finally blocks, no cleanup
    process.wait()
    return line, process


def snapshot(directory: Path) -> dict[str, bytes] | None:
    if not directory.exists():
        return None
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def temporaries(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in (root / "data").rglob(".*"))


@pytest.mark.parametrize("hook", ["write_table:2", "replace:2", "replace:7", "replace:8"])
def test_kill_at_any_write_leaves_old_or_new_outputs_and_the_rerun_cleans_up(tmp_path, hook):
    project = make_project(tmp_path)
    assert run_stage(project).returncode == 0
    old = snapshot(project / "data/ingest")
    set_ingest(project, label_threshold=3)  # every labelled file changes
    line, process = run_stage(project, hook=hook)
    assert line == "stopped\n" and process.returncode == -signal.SIGKILL
    after_kill = snapshot(project / "data/ingest")
    left_behind = temporaries(project)

    done = run_stage(project)
    assert done.returncode == 0, done.stderr
    new = snapshot(project / "data/ingest")
    assert new != old
    assert after_kill in (old, new, None)  # never a mix of runs, never a temporary inside
    if hook != "replace:8":
        assert left_behind  # the killed run did leave something ...
    assert temporaries(project) == []  # ... which the next run removed


def test_outputs_follow_the_umask(tmp_path):
    project = make_project(tmp_path)
    for umask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)):
        done = run_stage(project, umask)
        assert done.returncode == 0, done.stderr
        out = project / "data/ingest"
        assert out.stat().st_mode & 0o777 == dir_mode
        assert {path.name: path.stat().st_mode & 0o777 for path in out.iterdir()} == {
            name: file_mode for name in ("card.json", "interactions.parquet", "items.parquet", "subsets.parquet",
                                         "topn_candidates.parquet", "users.parquet")}


def test_embedded_default_gives_the_same_bytes_in_any_checkout(tmp_path):
    outputs = []
    for checkout in ("a", "deeper/b"):
        root = tmp_path / checkout
        root.mkdir(parents=True)
        section = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]
        section["source"]["path"] = str(PIN.relative_to(REPO))
        (root / "params.yaml").write_text(yaml.safe_dump({"ingest": section}))
        (root / "pipeline/ingest").mkdir(parents=True)
        (root / "pipeline/ingest" / PIN.name).write_bytes(PIN.read_bytes())
        done = run_stage(root)
        assert done.returncode == 0, done.stderr
        outputs.append(snapshot(root / "data/ingest"))
    assert outputs[0] == outputs[1]
    card = json.loads(outputs[0]["card.json"])
    assert card["source"] == {"format": "recbole",
                              "interactions_file": "recbole==1.2.1:dataset_example/ml-100k/ml-100k.inter",
                              "items_file": "recbole==1.2.1:dataset_example/ml-100k/ml-100k.item"}
    assert str(tmp_path) not in outputs[0]["card.json"].decode() and sys.prefix not in outputs[0]["card.json"].decode()
    assert card["read"]["timestamp_units"] == {"s": 100_000} and card["read"]["duplicates"]["repeated_rows"] == 0
    assert card["read"]["bad_lines_skipped"] == {} and card["totals"]["rows"] == 100_000
    assert card["fingerprint"] == ingest_fingerprint(tmp_path / "a/data/ingest")  # what metrics files record


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": "9.9.9"}, r"installed recbole is 1.2.1, the pin says 9.9.9"),
        ({"md5": {"ml-100k.inter": "0" * 32, "ml-100k.item": "fb748e97e64d9a35421d06d7083d0959"}},
         r"ml-100k.inter: md5 a8a8c3f165aedc53f63b5dc0a0463b14 differs from"),
        ({"md5": {"ml-100k.item": "fb748e97e64d9a35421d06d7083d0959"}}, r"ml-100k.inter is not pinned"),
    ],
)
def test_embedded_pin_mismatch_is_an_error(tmp_path, change, message):
    pin = tmp_path / "other.embedded.json"
    pin.write_text(json.dumps({**json.loads(PIN.read_text()), **change}))
    with pytest.raises(IngestError, match=message):
        run_ingest(IngestParams.model_validate(section("ingest", source={"path": str(pin)})))
