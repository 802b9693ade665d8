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

from pipeline.cli import recommend, report  # noqa: E402
from pipeline.cli.stage_of import MissingArtifact  # noqa: E402
from pipeline.recommend.candidates import UnknownUser  # noqa: E402


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="thinkrec", description=__doc__)
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
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"thinkrec {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
