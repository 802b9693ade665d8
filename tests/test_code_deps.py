"""dvc.yaml's code deps are each stage's import closure (stages/code_deps.py): every project file a
stage can import is declared, and an edit to a library file makes `dvc status` report exactly the
stages that import it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import code_deps

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).parent / "dvc")


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_closure_follows_every_kind_of_import(tmp_path):
    write(tmp_path, "stages/__init__.py", "")
    write(tmp_path, "stages/run.py", "import json\nfrom pipeline.a import helper\n\ndef main():\n"
                                     "    from pipeline.b.deep import thing  # a function-level import\n")
    write(tmp_path, "pipeline/__init__.py", "")
    write(tmp_path, "pipeline/a.py", "from . import c\nfrom .b import sibling\nhelper = 1\n")
    write(tmp_path, "pipeline/b/__init__.py", "")
    write(tmp_path, "pipeline/b/deep.py", "from ..c import value\nthing = value\n")
    write(tmp_path, "pipeline/b/sibling.py", "")
    write(tmp_path, "pipeline/c.py", "value = 2\n")
    write(tmp_path, "pipeline/unused.py", "")
    write(tmp_path, "pipeline/b/unused.py", "")
    closure = code_deps.import_closure("stages.run", tmp_path)
    assert {str(p) for p in closure} == {
        "stages/__init__.py", "stages/run.py", "pipeline/__init__.py", "pipeline/a.py", "pipeline/c.py",
        "pipeline/b/__init__.py", "pipeline/b/deep.py", "pipeline/b/sibling.py"}
    # pipeline/b/unused.py keeps pipeline/b from collapsing into a folder
    assert "pipeline/b" not in code_deps.collapse(closure, tmp_path)
    (tmp_path / "pipeline/b/unused.py").unlink()
    assert code_deps.collapse(code_deps.import_closure.__wrapped__("stages.run", tmp_path), tmp_path) == [
        "pipeline/__init__.py", "pipeline/a.py", "pipeline/b", "pipeline/c.py", "stages/__init__.py", "stages/run.py"]


def declared_stages() -> dict[str, dict]:
    """dvc.yaml's stages, a foreach stage once (its code deps do not depend on the item)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: body.get("do", body) for name, body in stages.items()}


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(dep) or path.is_relative_to(dep) for dep in deps)


@pytest.mark.parametrize("name", sorted(declared_stages()))
def test_every_imported_project_file_is_declared(name):
    body = declared_stages()[name]
    module = body["cmd"].split()[body["cmd"].split().index("-m") + 1]
    missing = [str(p) for p in code_deps.import_closure(module) if not covered(p, body["deps"])]
    assert missing == [], f"{name} imports files its dvc.yaml entry does not declare"
    assert covered(Path("pipeline/errors.py"), body["deps"])  # every stage runs through run_stage


def scratch_project(tmp_path: Path) -> Path:
    """The project's tracked files without its lock, every data dep and out a placeholder file, and
    a dvc.lock committed over them: a pipeline that `dvc status` calls up to date."""
    root = tmp_path / "project"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for relative in tracked:
        if (ROOT / relative).is_file() and relative != "dvc.lock" and not relative.startswith(("metrics/", "plots/")):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, root / relative)
    subprocess.run([DVC, "config", "core.no_scm", "true"], cwd=root, check=True)  # .dvc/ came with the files
    script = ("from dvc.repo import Repo\nrepo = Repo('.')\nfor stage in repo.index.stages:\n"
              "    for item in [*stage.deps, *stage.outs]:\n        print(item.def_path)\n")
    paths = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    for relative in sorted(set(paths.stdout.split()), key=len, reverse=True):
        path = root / relative
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("placeholder\n")
    subprocess.run([DVC, "commit", "-f", "-q"], cwd=root, check=True, capture_output=True)
    return root


def stages_changed(root: Path) -> set[str]:
    done = subprocess.run([DVC, "status", "--json"], cwd=root, capture_output=True, text=True, check=True)
    return {name.split(":")[-1] for name in json.loads(done.stdout or "{}")}


def importers(library_file: str) -> set[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    names = set()
    for name, body in stages.items():
        do = body.get("do", body)
        module = do["cmd"].split()[do["cmd"].split().index("-m") + 1]
        if Path(library_file) in code_deps.import_closure(module):
            items = body.get("foreach")
            if isinstance(items, str):  # ${experts.slots}
                items = yaml.safe_load((ROOT / "params.yaml").read_text())["experts"]["slots"]
            names.update([f"{name}@{item}" for item in items] if items is not None else [name])
    return names


@pytest.mark.slow  # a dvc commit and three dvc status over a copy of the project, about 20 s
def test_a_library_edit_makes_dvc_status_report_every_stage_that_imports_it(tmp_path):
    root = scratch_project(tmp_path)
    assert stages_changed(root) == set()
    for library_file in ("pipeline/layout.py", "pipeline/rec/fusion.py"):
        original = (root / library_file).read_text()
        (root / library_file).write_text(original + "# an edit\n")
        expected = importers(library_file)
        assert expected, library_file
        assert stages_changed(root) == expected, library_file
        (root / library_file).write_text(original)
    assert len(importers("pipeline/layout.py")) >= 20  # nearly every stage: the edit the issue found unreported
