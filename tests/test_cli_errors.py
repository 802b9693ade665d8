"""CLI errors are one clear line on stderr and a non-zero exit: `report -o <directory>` or a
target that cannot be written (named, not its temporary), a metrics file `report` cannot read
(named, not silently left out), `recommend` with an unknown `cf.model` (named as a params key, not
as a stage to run that does not exist)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from params_base import PARAMS_FILE
from report_fixture import write_report_project

from pipeline.cli.main import main


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"thinkrec {command}: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_report_to_a_directory_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    assert main(["report", "-o", "out", "--no-experiments"]) == 1
    assert "-o out is a directory" in one_line_error(capsys, "report")


def test_report_names_the_metrics_files_it_could_not_read(tmp_path, monkeypatch, capsys):
    root = write_report_project(tmp_path)
    (root / "metrics/collm.json").write_text('{"auc": 0.6, "auc_lo')  # cut off mid-write
    monkeypatch.chdir(root)
    assert main(["report", "-o", "r.html", "--no-experiments"]) == 0
    out = capsys.readouterr().out
    assert "metrics/collm.json (unreadable" in out
    assert "metrics/collm.json" in (root / "r.html").read_text()


def test_recommend_with_an_unknown_cf_model_names_the_key(tmp_path, monkeypatch, capsys):
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params["cf"]["model"] = "bpr"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["recommend", "--user", "196"]) == 1
    err = one_line_error(capsys, "recommend")
    assert "cf.model" in err and "cf@bpr" not in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created")
def test_report_that_cannot_be_written_names_the_target_not_its_temporary(tmp_path, monkeypatch, capsys):
    root = write_report_project(tmp_path)
    monkeypatch.chdir(root)
    assert main(["report", "-o", "/proc/thinkrec-report.html", "--no-experiments"]) == 1
    err = one_line_error(capsys, "report")
    # before: "[Errno 2] No such file or directory: '/proc/.thinkrec-report.html.<pid>.<random>.tmp'"
    assert err.startswith("thinkrec report: error: /proc/thinkrec-report.html: cannot be written: ")
    assert ".tmp" not in err
