"""A stage's code dependencies, derived from its imports: the project-local import closure of the
module its command runs (`python -m stages.<name>`), so dvc.yaml declares every file whose edit can
change what the stage computes and `dvc repro` reruns exactly the stages that import it.

The closure follows every `import` and `from ... import` anywhere in a file (function-level imports
included), plus the `__init__.py` of each package on the way (Python runs them on import). A folder
whose every Python file is in the closure is declared as the folder (dvc.yaml stays readable); the
other files are declared one by one.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages")  # the project's own top-level packages: everything else is a library


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The project file of dotted module `name` (relative to `root`), or None outside the project."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(root)
    return None


def _package_inits(name: str, root: Path) -> list[Path]:
    """`a/__init__.py`, `a/b/__init__.py` for module `a.b.c`: run by Python before `a.b.c` itself."""
    parts = name.split(".")
    found = (module_file(".".join(parts[:i]), root) for i in range(1, len(parts)))
    return [path for path in found if path is not None and path.name == "__init__.py"]


def _module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Dotted names `path` imports: `import a.b` -> a.b; `from a import b` -> a and a.b (b may be a
    module or an attribute: resolving it against the files decides); relative imports resolved."""
    tree = ast.parse((root / path).read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


@lru_cache(maxsize=None)
def import_closure(module: str, root: Path = ROOT) -> frozenset[Path]:
    """Every project file that running `python -m <module>` can import, relative to `root`."""
    start = module_file(module, root)
    if start is None:
        raise ValueError(f"{module} is not a module of this project ({', '.join(PACKAGES)})")
    seen: set[Path] = set()
    todo = [start, *_package_inits(module, root)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path, root):
            found = module_file(name, root)
            if found is not None:
                todo.append(found)
                todo.extend(_package_inits(name, root))
    return frozenset(seen)


def _python_files(folder: Path, root: Path) -> set[Path]:
    return {path.relative_to(root) for path in (root / folder).rglob("*.py") if "__pycache__" not in path.parts}


def collapse(files: frozenset[Path], root: Path = ROOT) -> list[str]:
    """`files` as dvc.yaml deps: a folder wherever the closure holds every Python file under it (the
    topmost such folder), single files elsewhere; sorted."""
    folders = sorted({parent for path in files for parent in path.parents if parent != Path(".")},
                     key=lambda folder: len(folder.parts))
    covered: list[Path] = []
    for folder in folders:
        if any(folder.is_relative_to(done) for done in covered):
            continue
        if folder.parts[0] in PACKAGES and len(folder.parts) > 1 and _python_files(folder, root) <= files:
            covered.append(folder)
    singles = [path for path in files if not any(path.is_relative_to(folder) for folder in covered)]
    return sorted(str(path) for path in [*covered, *singles])


def code_deps(cmd: str, root: Path = ROOT) -> list[str]:
    """dvc.yaml's code deps for a stage command `... python -m <module> [args]`."""
    words = cmd.split()
    module = words[words.index("-m") + 1]
    return collapse(import_closure(module, root), root)
