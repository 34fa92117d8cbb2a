"""The `astro-dag-deploy` command: the CI client's commands, and those of the project checkout when it is installed.

The checkout registers `local`, `serve` and `bench` through the `astro_dag_deploy.commands` entry-point group (each
entry point adds its command to the sub-parsers); without it, they say in one line how to get it.
"""

import argparse
import sys
from importlib.metadata import entry_points

from astro_dag_deploy.client import EXIT_ERROR, register_client_commands

COMMANDS_GROUP = "astro_dag_deploy.commands"
CHECKOUT_COMMANDS = {
    "local": "run the real state machine with our handlers on an embedded AWS (no account needed)",
    "serve": "serve the deployments API on 127.0.0.1 with the local mode behind it (no account needed)",
    "bench": "measure the S3 steps, whole local executions and cold starts",
}
GET_THE_CHECKOUT = "git clone https://github.com/ORG/astro-dag-deploy.git && cd astro-dag-deploy && make demo"


def needs_the_checkout(args: argparse.Namespace) -> int:
    print(f"astro-dag-deploy {args.command}: needs the project checkout, not only the CI client: {GET_THE_CHECKOUT}",
          file=sys.stderr)
    return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astro-dag-deploy",
        description="Deploy Airflow DAGs from many Git repos to Astronomer deployments through Step Functions.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_client_commands(commands)
    registered = set()
    for entry_point in entry_points(group=COMMANDS_GROUP):
        entry_point.load()(commands)
        registered.add(entry_point.name)
    for name, help_text in CHECKOUT_COMMANDS.items():
        if name not in registered:
            missing = commands.add_parser(name, help=f"{help_text} [needs the project checkout]", add_help=False)
            missing.set_defaults(run=needs_the_checkout, passes_arguments=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, arguments = parser.parse_known_args(argv)
    if arguments and not getattr(args, "passes_arguments", False):
        # Only commands that pass their arguments on take unknown ones: argparse's own error for the others.
        args = parser.parse_args(argv)
    args.arguments = arguments
    return args.run(args)
