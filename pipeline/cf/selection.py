"""Which CF model feeds the LLM stages (params cf.model): `auto` takes the best AUC on the validation
rows of evaluate.selection_subset (pipeline/metrics/compare.py, the rule of evaluate's vs_best_cf), a
model's name takes that model.

The cf_select stage writes the choice once, to data/cf_selected/: a byte copy of every file of the
chosen model's data/cf/<model>/ (vectors, per-row states, checkpoint), its predictions as
predictions.parquet, and selected.json naming it. The readers: pipeline/cf/selected.py.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline import layout, schemas
from pipeline.artifacts import atomic_directory, read_frame, write_json
from pipeline.cf.selected import AUTO, PREDICTIONS, SELECTED
from pipeline.errors import BadParams
from pipeline.metrics.compare import best_by_auc

# the files every CF model writes, checked (schema, finite values) before they are copied; a model's
# other files (row_user_vectors.parquet of a sequential model, model.pt, train_log.json) are copied too
VECTORS = {"user_vectors.parquet": schemas.USER_VECTORS, "item_vectors.parquet": schemas.ITEM_VECTORS}
CHECKED = {**VECTORS, "row_user_vectors.parquet": schemas.ROW_USER_VECTORS, PREDICTIONS: schemas.PREDICTIONS}


@dataclass(frozen=True)
class CFChoice:
    model: str
    requested: str  # cf.model: auto or a model's name
    rows: str  # the rows every AUC is measured on (evaluate.selection_subset)
    aucs: dict[str, float]  # every candidate's AUC on `rows`, in registry order (NaN: one label only)
    chance_auc: float  # cf.chance_auc

    @property
    def auc(self) -> float:
        return self.aucs[self.model]

    @property
    def at_chance(self) -> bool:
        return not self.auc >= self.chance_auc  # a NaN AUC (one label only) says nothing either

    def warning(self) -> str | None:
        """One line when the chosen model is at chance, naming a better candidate if there is one."""
        if not self.at_chance:
            return None
        best, best_auc = best_by_auc(self.aucs)
        if best != self.model and best_auc >= self.chance_auc:
            hint = f"{best} has {best_auc:.3f} (cf.model: auto would take it)"
        else:
            hint = "no CF model is above it: check the cf stages' training (data/cf/<model>/train_log.json)"
        return (f"{self.model}'s AUC {self.auc:.3f} on {self.rows} is below cf.chance_auc {self.chance_auc}: "
                f"the CF tokens it feeds the LLM stages carry about a coin's signal; {hint}")

    def as_dict(self) -> dict:
        """metrics/cf_select.json: the choice, how it was made and every candidate's AUC."""
        shown = {name: None if math.isnan(value) else value for name, value in self.aucs.items()}
        return {"model": self.model, "requested": self.requested, "rows": self.rows, "auc": shown[self.model],
                "aucs": shown, "chance_auc": self.chance_auc, "at_chance": self.at_chance, "warning": self.warning()}


def choose_cf_model(requested: str, aucs: dict[str, float], rows: str, chance_auc: float) -> CFChoice:
    """cf.model `requested` resolved against the candidates' AUCs on `rows`: auto takes the best."""
    if requested != AUTO and requested not in aucs:
        raise BadParams(f"cf.model '{requested}' is not among the candidates {list(aucs)}")
    model = best_by_auc(aucs)[0] if requested == AUTO else requested
    return CFChoice(model, requested, rows, dict(aucs), chance_auc)


def model_files(cf_dir: Path, predictions: Path) -> dict[str, Path]:
    """name in data/cf_selected/ -> the file copied there: every file of a CF model's directory (its
    vectors always, so a missing one is named) and its predictions."""
    files = {name: cf_dir / name for name in VECTORS}
    if cf_dir.is_dir():
        files.update({path.name: path for path in sorted(cf_dir.iterdir())
                      if path.is_file() and not path.name.startswith(".")})  # not an atomic write's temporary
    return {**files, PREDICTIONS: predictions}


def write_selection(model: str, files: dict[str, Path], out_dir: Path = layout.CF_SELECTED_DIR) -> Path:
    """Copy `files` (model_files) byte for byte into `out_dir` with selected.json naming `model`, as a
    whole; a missing or invalid vectors or predictions file is an error naming its source."""
    for name, source in files.items():
        if name in CHECKED:
            read_frame(source, CHECKED[name])
    with atomic_directory(out_dir) as tmp:
        for name, source in files.items():
            shutil.copyfile(source, tmp / name)
        write_json({"model": model}, tmp / SELECTED)
    return Path(out_dir)
