"""Which `dvc repro` stage writes an artifact the commands read, for 'run this first' messages."""
from __future__ import annotations

from pathlib import Path
from pipeline.errors import MissingInput

PREFIXES = {"data/ingest": "ingest", "data/keywords": "keywords", "data/traces": "traces",
            "data/explanations": "explain", "data/predictions": "evaluate", "data/experts": "gate"}


class MissingArtifact(MissingInput):
    def __init__(self, path: Path, stage: str):
        super().__init__(f"{path} is missing: run `dvc repro {stage}` first (or `make repro` for everything)")
        self.path, self.stage = path, stage


def producing_stage(path: Path, backbone: str | None = None) -> str:
    """The stage name for `path`: data/cf/<m>/ -> cf@<m>, data/rec/<v>/ -> <v>, the backbone -> prepare_model."""
    parts = Path(path).parts
    if backbone is not None and Path(path) == Path(backbone):
        return "prepare_model"
    if parts[:2] == ("data", "cf") and len(parts) > 2:
        return f"cf@{parts[2]}"
    if parts[:2] == ("data", "rec") and len(parts) > 2:
        return parts[2]
    return PREFIXES.get("/".join(parts[:2]), "")


def require(paths: list[Path], backbone: str | None = None) -> None:
    """Raise MissingArtifact for the first of `paths` that does not exist."""
    for path in paths:
        if not Path(path).exists():
            raise MissingArtifact(Path(path), producing_stage(path, backbone) or "<the stage that writes it>")
