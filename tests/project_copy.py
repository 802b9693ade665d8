"""A copy of the project in a fresh git repo, and `dvc` run in it: for tests that run the real
pipeline (profile dry runs, DVC graph checks) without touching the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def project_copy(root: Path) -> Path:
    """The repository's files (tracked and new, not ignored) in a fresh git repo with one commit."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run(git + args, cwd=root, check=True, capture_output=True)
    return root


def run_dvc(root: Path, *args: str, timeout: int = 600, env: dict | None = None) -> str:
    env = {**os.environ, **(env or {}), "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # exp run may commit
    result = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=root, capture_output=True,
                            text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout
