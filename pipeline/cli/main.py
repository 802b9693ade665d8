"""thinkrec: `thinkrec recommend --user <id>` and `thinkrec report [-o report.html]`, run from the
project root after `dvc repro` (or `make repro`)."""
from __future__ import annotations

import argparse
import os
import sys
import warnings

# a command's output is its answer: no progress bars or library chatter (set before the imports read them)
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notes, not the user's concern

from pipeline.artifacts import UnreadableArtifact  # noqa: E402
from pipeline.cli import recommend, report  # noqa: E402
from pipeline.cli.stage_of import MissingArtifact, rebuild_hint  # noqa: E402
from pipeline.recommend.candidates import UnknownUser  # noqa: E402


class OneLineParser(argparse.ArgumentParser):
    """An argument error is one line, `thinkrec <command>: error: argument -k: ...`, exit status 2
    (argparse's own status; argparse would print the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    main = OneLineParser(prog="thinkrec", description=__doc__)  # its subcommands' parsers are of its class
    commands = main.add_subparsers(dest="command", required=True)
    recommend.add_arguments(commands.add_parser(
        "recommend", help="top-K items for one user, re-ranked by the trained LLM recommender, with reasons"))
    report.add_arguments(commands.add_parser(
        "report", help="one self-contained HTML page of the pipeline's results (readable offline)"))
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = {"recommend": recommend.run, "report": report.run}[args.command]
    try:
        return command(args)
    except (MissingArtifact, UnknownUser, OSError, KeyError, ValueError) as err:
        print(f"thinkrec {args.command}: error: {message(err)}", file=sys.stderr)
        return 1


def message(err: Exception) -> str:
    if isinstance(err, UnreadableArtifact):  # the library names the file; the pipeline knows its stage
        return f"{err}; {rebuild_hint(err.path)}"
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


if __name__ == "__main__":
    sys.exit(main())
