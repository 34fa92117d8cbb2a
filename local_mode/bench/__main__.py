"""`python -m local_mode.bench [--sizes 10,100,1000] [--runs 5] [--quick] [--no-write]` (what `make bench` runs).

Progress goes to stderr; stdout gets the table, then the JSON summary as its last line.
"""

import argparse
import json
import sys

from local_mode.bench.report import render, summary, write_results
from local_mode.bench.ships import FULL, QUICK
from local_mode.bench.suite import DEFAULT_RUNS, DEFAULT_SIZES, run_benchmark
from local_mode.project import PROJECT_ROOT

DOCUMENT = PROJECT_ROOT / "docs" / "benchmarks.md"


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of file counts") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("every size must be a file count of at least 1")
    return sorted(set(sizes))


def _runs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of runs of at least 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_mode.bench",
        description="Measure the S3 steps against the AWS CLI on a local moto server, whole local executions "
        "(wall time, state transitions), each zip function's cold-start proxy, the cost of gathering a bundle as "
        "a deployment grows in repos, and bursts of pushes to one deployment.",
    )
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES), metavar="N,N,...",
                        help="numbers of DAG files to measure with (default: 10,100,1000)")
    parser.add_argument("--runs", type=_runs, default=DEFAULT_RUNS, metavar="RUNS",
                        help=f"runs per figure, the median is reported (default: {DEFAULT_RUNS})")
    parser.add_argument("--quick", action="store_true",
                        help="ships measured small: gathering 1 x 20 and 3 x 20 files once, bursts of 1 and 2 "
                        "pushes with a 1 s CLI (default: 1 x 200 and 10 x 200 files, bursts of 1, 5, 20 and 50 with "
                        "a 5 s CLI, which take minutes)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update docs/{DOCUMENT.name}")
    return parser


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = run_benchmark(args.sizes, args.runs, QUICK if args.quick else FULL, _progress)
    table = render(results)
    print(table)
    if not args.no_write:
        write_results(DOCUMENT, table)
        _progress(f"table written to docs/{DOCUMENT.name}")
    print(json.dumps(summary(results)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
