"""The project checkout's commands of `astro-dag-deploy`: `local` and `bench` (`serve` is in local_mode.serve).

The root pyproject.toml registers them in the `astro_dag_deploy.commands` entry-point group; the CI client alone
only says that they need the checkout.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2
DEFAULT_OUT = Path(".local")


def run_local(args: argparse.Namespace) -> int:
    # Imported here: the local mode loads moto and jsii, which other commands do not need.
    from local_mode.executions import ProgressPrinter
    from local_mode.output import stdout_to_file
    from local_mode.project import DEFAULT_SCENARIO
    from local_mode.report import json_report, print_summary
    from local_mode.scenario import Scenario, ScenarioError, run_scenario
    from local_mode.world import LocalWorld

    started = time.monotonic()
    try:
        scenario = Scenario.load(args.scenario or DEFAULT_SCENARIO)
    except ScenarioError as error:
        return usage_error("local", str(error))
    astro_cli = None
    if args.astro_cli:
        astro_cli = shutil.which(args.astro_cli)
        if astro_cli is None:
            return usage_error("local", f"--astro-cli {args.astro_cli}: not an executable file")
    out_dir: Path = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "handlers.log"
    progress = ProgressPrinter(sys.stderr)
    progress.line(f"Synthesizing the stack and creating it in an embedded AWS (handler logs: {log_path})")
    with stdout_to_file(log_path):
        with LocalWorld(out_dir, astro_cli=astro_cli, context_overrides=scenario.context) as world:
            progress.line(f"Stack ready in {time.monotonic() - started:.1f} s; running {len(scenario.requests)} "
                          f"request(s){' at once' if scenario.concurrent else ''}")
            outcomes = run_scenario(world, scenario, progress)
            report = json_report(world, outcomes)
    print_summary(outcomes, report, sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    progress.line(f"Handler logs: {log_path}; embedded AWS log: {world.engine_log}. "
                  f"Finished in {time.monotonic() - started:.1f} s.")
    return EXIT_OK if all(outcome.as_expected for outcome in outcomes) else EXIT_UNEXPECTED


def usage_error(command: str, message: str) -> int:
    print(f"astro-dag-deploy {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def register_local_command(commands: argparse._SubParsersAction) -> None:
    """Add `local` to the command's sub-parsers."""
    local = commands.add_parser(
        "local",
        help="run the real state machine with our handlers on an embedded AWS (no account needed)",
        description="Synthesize the stack, create it in an in-process moto and run a scenario's requests through "
        "the real state machine. Progress goes to stderr; exit 0 if and only if every execution ends as its "
        "request expects.",
    )
    local.add_argument(
        "scenario", nargs="?", type=Path,
        help="scenario JSON file (default: examples/scenario.json of the project)",
    )
    local.add_argument(
        "--astro-cli", metavar="PATH",
        help="astro executable the deploy step runs (default: the project's local stand-in)",
    )
    local.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
        help="folder for handler logs and the stand-in's deployments (default: .local)",
    )
    local.add_argument("--json", action="store_true", help="print one JSON report on stdout and nothing else")
    local.set_defaults(run=run_local)


def run_bench(args: argparse.Namespace) -> int:
    # Imported here: the benchmarks load moto, the handlers and the CDK app, which other commands do not need.
    from local_mode.bench.__main__ import main

    return main(args.arguments)


def register_bench_command(commands: argparse._SubParsersAction) -> None:
    """Add `bench`: `python -m local_mode.bench` (what `make bench` runs), its arguments passed through."""
    bench = commands.add_parser(
        "bench",
        help="measure the S3 steps, whole local executions and cold starts (`bench --help` lists its options)",
        add_help=False,
    )
    bench.set_defaults(run=run_bench, passes_arguments=True)
