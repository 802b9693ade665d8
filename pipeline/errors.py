"""The project's own errors: what a user can fix (the input files, params.yaml, an artifact a
stage needs, the teacher service). A stage or command prints one of these as one line and exits
non-zero (`run_stage`); any other exception is a bug and keeps its traceback. Ctrl-C is one line
too, exit status 130."""
from __future__ import annotations

import sys
from collections.abc import Callable


class ProjectError(Exception):
    """Base of the errors a user can act on; the message names the file, line, field or params key."""


class BadInput(ProjectError, ValueError):
    """An input file's content is invalid (file:line: field: why)."""


class BadParams(ProjectError, ValueError):
    """params.yaml (or a profile) holds an invalid value (the key in full: why)."""


class MissingInput(ProjectError, FileNotFoundError):
    """A file a stage or command reads does not exist (and what writes it)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised again by code that can say what the run kept (e.g. the LLM response cache:
    how many answers it holds); still a KeyboardInterrupt for code that does not know it."""


def run_stage(main: Callable[..., object], *args: object) -> None:
    """Call a stage's `main(*args)`; a ProjectError becomes `<stage>: error: <message>` on stderr
    and exit status 2 (nothing after it runs: the stage has written no output yet or wrote it
    atomically), anything else propagates with its traceback. Ctrl-C prints `<stage>: interrupted`
    (an Interrupted's message says what was kept) and exits 130, as shells report SIGINT."""
    try:
        main(*args)
    except ProjectError as err:
        # on a line of its own even when a progress bar was drawing on stderr
        print(f"\n{_stage_name(main)}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as err:
        print(f"\n{_stage_name(main)}: {str(err) or 'interrupted'}", file=sys.stderr)
        raise SystemExit(130) from None


def _stage_name(main: Callable[..., object]) -> str:
    """`stages.cf` for `python -m stages.cf` (its module is then `__main__`)."""
    module = main.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else sys.argv[0]
    return module
