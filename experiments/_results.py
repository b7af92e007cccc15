"""./launch.sh results: render every results table of README.md and docs/*.md from the committed JSON.

    ./launch.sh results            rewrite the tables between <!-- results:NAME --> markers
    ./launch.sh results --check    change nothing; exit 1 naming each table and figure that differs
    ./launch.sh results --collect=RUN_DIR --preset=NAME
                                   copy a run's results into experiments/results/ (relative paths): a
                                   finished run, or a likelihood run still training (its latest
                                   importance-weighted evaluation, marked in progress)

The tables are declared in vaecnn/results_tables.py, the file layout in vaecnn/results_registry.py.
"""

import argparse
import os
import sys

from vaecnn import results_registry
from vaecnn.results_tables import TABLES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./launch.sh results", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a rendered table differs from the committed results")
    parser.add_argument("--collect", metavar="RUN_DIR",
                        help="a run's folder to copy into the layout: finished, or a likelihood run still "
                             "training with importance-weighted evaluations of some of its epochs")
    parser.add_argument("--preset", help="with --collect: the preset of configs/ that the run is a row of")
    args = parser.parse_args(argv)
    if args.collect:
        if not args.preset:
            parser.error("--collect needs --preset: the preset of configs/ that the run is a row of")
        try:
            written = results_registry.collect(ROOT, args.collect, args.preset)
        except (OSError, ValueError) as error:
            parser.error(f"--collect: {error}")
        for path in written:
            print(f"results: wrote {path}")
        return 0
    if args.check:
        problems = results_registry.check(ROOT, TABLES)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            print("error: the documentation differs from the committed results; run ./launch.sh results",
                  file=sys.stderr)
            return 1
        print(f"results: the {len(TABLES)} tables match the committed results")
        return 0
    changed = results_registry.write(ROOT, TABLES)
    print(f"results: rewrote {', '.join(changed)}" if changed else "results: every table was up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
