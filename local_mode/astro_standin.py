#!/usr/bin/env python3
"""THE LOCAL STAND-IN for the astro CLI. It is NOT the real astro CLI and never talks to Astro.

The local mode and the tests run the deploy step against it, through an `astro` wrapper that
`write_standin_wrapper` writes: the deploy step passes only the real CLI's arguments and environment, and the
wrapper adds the stand-in's own state folder. Standard library only.

What it mirrors of the real CLI's DAG-only deploy (`astro deploy <DEPLOYMENT-ID> --dags --dags-path DIR -f ...`):
- its arguments: a positional deployment ID, --dags/-d, --dags-path, -f/--force, --workspace-id, --description,
  -n/--deployment-name, -w/--wait, --wait-time, and what it rejects: no deployment ID and no name, --image with
  --dags, --parse/--pytest (they build a Docker image), a deploy without --dags (an image deploy needs Docker),
  unknown flags ("Error: ..." and exit 1);
- ASTRO_API_TOKEN is required; the working directory must hold .astro/config.yaml (CLIs up to v1.44);
  the home config ($ASTRO_HOME or $HOME, then .astro/config.yaml) must be writable;
- its exit-0 traps: a bundle without any file named like `.py` is met with the "No DAGs found" prompt (unless
  `show_warnings: false` is configured; -f does not skip it), which reads EOF from stdin, prints
  "Canceling deploy..." and exits 0; a --workspace-id other than the deployment's (set with
  `configure_deployment`) prints "Invalid workspace id ..." and exits 0; a --dags-path that does not exist
  deploys an empty bundle;
- named Dag bundles (Airflow 3 deployments, CLI >= 1.46.0): `--dag-bundle-name NAME` deploys to that bundle
  (default `main`, which every deployment has), `--no-dags-base-dir` puts the files at the bundle's root instead of
  under `dags/`; a bundle that does not exist is an error (exit 1), as is `--dag-bundle-name` with `--image`;
  `astro deployment bundle create --deployment-id ID --name NAME` and `astro deployment bundle list
  --deployment-id ID --json` manage them (names: 1-32 of a-z 0-9 - _, never `main`);
- on success it REPLACES <state-dir>/<deployment-id>/bundles/<bundle>/ with the received folder (Astro replaces all
  DAGs of a bundle on every deploy; other bundles stay as they are), records the bundle's new version, and prints
  the real success line, the version in ANSI bold (the real CLI bolds it on a terminal or with CLICOLOR_FORCE: the
  stand-in always does, the harder case for a reader).
A deployment name (-n) stands for the deployment of the same ID: the stand-in has no registry of names.
While a file named HOLD_DEPLOYS exists in the state folder, deploys wait before landing (at most 120 s): a test
holds one there to make executions overlap without racing the clock; each deploy that waits appends a line to
HELD_LOG, so the test knows when every deploy it expects has started. While FAIL_DEPLOYS holds a count, the next
deploys that start fail (exit 1, an error the deploy step does not retry), one fewer each time.
Every deploy it starts is appended to <state-dir>/invocations.log (JSON lines: deployment_id, bundle, start, end,
files, outcome, version, and `received`: each file with its SHA-256), so a test can check that deploys of one bundle
never overlapped, and what each version held.
"""

import argparse
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

INVOCATIONS_LOG = "invocations.log"
HOLD_FILE = "HOLD_DEPLOYS"
HELD_LOG = "held.log"
FAIL_FILE = "FAIL_DEPLOYS"
HOLD_LIMIT_SECONDS = 120
SETTINGS_FILE = "settings.json"
BUNDLES_FOLDER = "bundles"
BUNDLES_FILE = "bundles.json"  # per deployment: {bundle name: its current version, or null before its first deploy}
MAIN_BUNDLE = "main"
BUNDLE_NAME = re.compile(r"[a-z0-9_-]{1,32}")
BOLD, RESET = "\x1b[1m", "\x1b[0m"
# The real CLI's test for a DAG file: the pattern ".py" anywhere in a file's name (a regular expression).
DAG_FILE_PATTERN = re.compile(r".py")
GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")


class CliError(Exception):
    """Printed as the real CLI prints errors ("Error: ..."), exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise CliError(message)


def write_standin_wrapper(bin_dir: Path, state_dir: Path, upload_seconds: float = 0.0) -> Path:
    """Write an executable `astro` in `bin_dir` that runs this stand-in with its state in `state_dir`.

    `upload_seconds` is how long each deploy's upload takes, so that a concurrency test has a window to catch
    two deploys of one deployment overlapping.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "astro"
    command = [sys.executable, str(Path(__file__).resolve()), "--standin-state-dir", str(state_dir.resolve()),
               "--standin-upload-seconds", str(upload_seconds)]
    wrapper.write_text(
        "#!/bin/sh\n# THE LOCAL STAND-IN for the astro CLI (not the real one), see local_mode/astro_standin.py\n"
        f'exec {shlex.join(command)} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper


@contextmanager
def deploys_held(state_dir: Path) -> Iterator[None]:
    """Keep the stand-in's deploys from landing until the block ends (a deploy already running waits too)."""
    hold = state_dir / HOLD_FILE
    hold.touch()
    try:
        yield
    finally:
        hold.unlink()


def fail_next_deploys(state_dir: Path, count: int) -> None:
    """Make the next `count` deploys that start fail."""
    (state_dir / FAIL_FILE).write_text(str(count))


def _failing(state_dir: Path) -> bool:
    """Whether this deploy is one of those `fail_next_deploys` asked for (it counts it)."""
    fail = state_dir / FAIL_FILE
    if not fail.exists():
        return False
    left = int(fail.read_text()) - 1
    if left > 0:
        fail.write_text(str(left))
    else:
        fail.unlink()
    return True


def wait_for_held_deploys(state_dir: Path, count: int, timeout: float = 60.0) -> None:
    """Wait until `count` deploys wait behind `deploys_held` (they have all started)."""
    log = state_dir / HELD_LOG
    deadline = time.monotonic() + timeout
    while not (log.exists() and len(log.read_text().splitlines()) >= count):
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} deploys were expected to wait behind the hold, not all started")
        time.sleep(0.05)


def _wait_while_held(state_dir: Path) -> None:
    if (state_dir / HOLD_FILE).exists():
        with open(state_dir / HELD_LOG, "a") as log:
            log.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + HOLD_LIMIT_SECONDS
    while (state_dir / HOLD_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def configure_deployment(state_dir: Path, deployment_id: str, workspace_id: str) -> None:
    """Give a deployment its workspace, so that a mismatching --workspace-id meets the real CLI's exit-0 trap."""
    folder = state_dir / deployment_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS_FILE).write_text(json.dumps({"workspaceId": workspace_id}))


def last_bundle(state_dir: Path, deployment_id: str, bundle: str = MAIN_BUNDLE) -> list[str]:
    """The files the stand-in last deployed to a bundle of `deployment_id`, relative to the --dags-path it got."""
    received = state_dir / deployment_id / BUNDLES_FOLDER / bundle
    if not received.is_dir():
        return []
    return sorted(path.relative_to(received).as_posix() for path in received.rglob("*") if path.is_file())


def bundle_versions(state_dir: Path, deployment_id: str) -> dict[str, str | None]:
    """The deployment's bundles and their current versions (`main` always exists)."""
    path = state_dir / deployment_id / BUNDLES_FILE
    recorded = json.loads(path.read_text()) if path.exists() else {}
    return {MAIN_BUNDLE: None, **recorded}


def create_bundle(state_dir: Path, deployment_id: str, name: str) -> None:
    """What `astro deployment bundle create` does, for tests that prepare a deployment."""
    with _bundles_locked(state_dir, deployment_id) as bundles:
        _check_new_bundle(name, bundles)
        bundles[name] = None


def read_invocations(state_dir: Path) -> list[dict]:
    log = state_dir / INVOCATIONS_LOG
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="astro", add_help=False)
    parser.add_argument("--standin-state-dir", type=Path)
    parser.add_argument("--standin-upload-seconds", type=float, default=0.0)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    deployment = commands.add_parser("deployment", add_help=False)
    deployment_commands = deployment.add_subparsers(dest="deployment_command", parser_class=_Parser)
    bundle = deployment_commands.add_parser("bundle", add_help=False)
    bundle_commands = bundle.add_subparsers(dest="bundle_command", parser_class=_Parser)
    create = bundle_commands.add_parser("create", add_help=False)
    create.add_argument("--deployment-id", required=True)
    create.add_argument("--name", required=True)
    listing = bundle_commands.add_parser("list", add_help=False)
    listing.add_argument("--deployment-id", required=True)
    listing.add_argument("--json", action="store_true")
    deploy = commands.add_parser("deploy", add_help=False)
    deploy.add_argument("deployment_id", nargs="?", default="")
    deploy.add_argument("-d", "--dags", action="store_true")
    deploy.add_argument("--dags-path", default="")
    deploy.add_argument("-f", "--force", action="store_true")
    deploy.add_argument("--workspace-id", default="")
    deploy.add_argument("--description", default="")
    deploy.add_argument("-n", "--deployment-name", default="")
    deploy.add_argument("-w", "--wait", action="store_true")
    deploy.add_argument("--wait-time", default="5m")
    deploy.add_argument("--image", action="store_true")
    deploy.add_argument("--parse", action="store_true")
    deploy.add_argument("--pytest", action="store_true")
    deploy.add_argument("-t", "--test", default="")
    deploy.add_argument("-p", "--prompt", action="store_true")
    deploy.add_argument("-s", "--save", action="store_true")
    deploy.add_argument("-e", "--env", default=".env")
    deploy.add_argument("-i", "--image-name", default="")
    deploy.add_argument("--build-secrets", action="append", default=[])
    deploy.add_argument("--dag-bundle-name", default="")
    deploy.add_argument("--no-dags-base-dir", action="store_true")
    return parser


def _config_value(files: list[Path], name: str) -> str | None:
    """A top-level `name: value` from the first of `files` that sets it (the project's config comes first)."""
    for config in files:
        if config.is_file():
            for line in config.read_text().splitlines():
                key, _, value = line.partition(":")
                if key.strip() == name and value.strip():
                    return value.strip().strip("'\"")
    return None


def _home_config() -> Path:
    home = os.environ.get("ASTRO_HOME") or os.environ.get("HOME") or ""
    if not home:
        raise CliError("cannot find the home folder: HOME is not set")
    config = Path(home) / ".astro" / "config.yaml"
    if not config.exists():
        try:
            config.parent.mkdir(parents=True, exist_ok=True)
            config.touch()
        except OSError as error:
            print(f"Error creating default config in home dir: {error}")
            raise CliError(f"cannot write the CLI's config in {config.parent}") from None
    return config


def _check_arguments(args: argparse.Namespace) -> None:
    if args.dag_bundle_name and args.image:
        raise CliError("--dag-bundle-name cannot be used with --image")
    if args.dags and args.image:
        raise CliError("cannot use both --dags and --image together. Run 'astro deploy' to update both your image "
                       "and dags")
    if args.parse or args.pytest or args.test:
        raise CliError("the local stand-in cannot run --parse or --pytest: they build a Docker image")
    if not args.dags:
        raise CliError("the local stand-in deploys DAGs only (--dags): an image deploy builds a Docker image")
    if not GO_DURATION.fullmatch(args.wait_time):
        raise CliError(f'invalid argument "{args.wait_time}" for "--wait-time" flag: time: invalid duration '
                       f'"{args.wait_time}"')
    if not args.deployment_id and not args.deployment_name:
        raise CliError("no Deployment given: pass a Deployment ID or --deployment-name (the stand-in cannot "
                       "prompt for one)")


@contextmanager
def _bundles_locked(state_dir: Path, deployment_id: str) -> Iterator[dict[str, str | None]]:
    """The deployment's bundle registry, read and written under a file lock (deploys run concurrently)."""
    folder = state_dir / deployment_id
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".bundles.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bundles = bundle_versions(state_dir, deployment_id)
        yield bundles
        recorded = {name: version for name, version in bundles.items() if name != MAIN_BUNDLE or version}
        # Replaced whole, never rewritten in place: concurrent readers (list, deploy) take no lock.
        staged = folder / f".{BUNDLES_FILE}.{uuid.uuid4().hex}"
        staged.write_text(json.dumps(recorded, indent=1))
        staged.replace(folder / BUNDLES_FILE)


def _check_new_bundle(name: str, bundles: dict[str, str | None]) -> None:
    if name == MAIN_BUNDLE or not BUNDLE_NAME.fullmatch(name):
        raise CliError(f"invalid Dag bundle name {name!r}: use 1-32 lowercase letters, digits, - or _, not main")
    if name in bundles:
        raise CliError(f"a Dag bundle named {name} already exists in this Deployment")


def _bundle_command(args: argparse.Namespace, state_dir: Path) -> None:
    if args.deployment_command != "bundle" or args.bundle_command not in ("create", "list"):
        raise CliError("the local stand-in runs only `astro deployment bundle create|list` of the deployment commands")
    if args.bundle_command == "create":
        create_bundle(state_dir, args.deployment_id, args.name)
        print(f"Successfully created Dag bundle {args.name} in Deployment {args.deployment_id}")
        return
    bundles = bundle_versions(state_dir, args.deployment_id)
    if args.json:
        print(json.dumps([{"name": name, "currentVersion": version} for name, version in bundles.items()]))
        return
    for name, version in bundles.items():
        print(f"{name}\t{version or '-'}")


def _replace_dags(state_dir: Path, deployment_id: str, bundle: str, dags_path: Path) -> None:
    folder = state_dir / deployment_id / BUNDLES_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    incoming = folder / f".incoming-{uuid.uuid4().hex}"
    if dags_path.is_dir():
        shutil.copytree(dags_path, incoming)
    else:
        incoming.mkdir()
    # Only the swap is serialised, so that overlapping deploys (which the invocations log shows) do not crash
    # the stand-in; the last swap wins, as the last upload does on Astro.
    with open(folder / f".{bundle}.swap.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = folder / bundle
        if current.exists():
            retired = folder / f".retired-{uuid.uuid4().hex}"
            current.rename(retired)
            shutil.rmtree(retired)
        incoming.rename(current)


def received_digests(dags_path: Path) -> dict[str, str]:
    """Each file a deploy received (relative to its --dags-path) with its SHA-256: what that version holds."""
    return {path.relative_to(dags_path).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(dags_path.rglob("*")) if path.is_file()} if dags_path.is_dir() else {}


def _deploy(args: argparse.Namespace, state_dir: Path) -> tuple[str, dict[str, str], str | None]:
    """Run one deploy; return its outcome, the files it received (`received_digests`) and the version it made."""
    deployment_id = args.deployment_id or args.deployment_name
    if args.deployment_id and args.deployment_name:
        print(f"Both a Deployment ID and Deployment name have been supplied. The Deployment ID {deployment_id} "
              "will be used for the Deploy")
    settings_file = state_dir / deployment_id / SETTINGS_FILE
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    if args.workspace_id and settings.get("workspaceId") not in (None, args.workspace_id):
        print(f"Invalid workspace id {args.workspace_id} was provided through the --workspace-id flag")
        return "invalid workspace", {}, None
    bundle = args.dag_bundle_name or MAIN_BUNDLE
    if bundle not in bundle_versions(state_dir, deployment_id):
        raise CliError(f"no Dag bundle named {bundle} was found in Deployment {deployment_id}: create it with "
                       f"astro deployment bundle create --deployment-id {deployment_id} --name {bundle}")

    dags_path = Path(args.dags_path) if args.dags_path else Path.cwd() / "dags"
    digests = received_digests(dags_path)
    if _failing(state_dir):
        print(f"Error: failed to deploy DAGs to Deployment {deployment_id} (the local stand-in, as the test asked)",
              file=sys.stderr)
        return "failed", digests, None
    if not dags_path.is_dir():
        print(f"(stand-in) {dags_path} does not exist: the real CLI deploys an empty bundle")
    configs = [Path.cwd() / ".astro" / "config.yaml", _home_config()]
    show_warnings = (_config_value(configs, "show_warnings") or "true").lower() != "false"
    if show_warnings and not any(DAG_FILE_PATTERN.search(PurePosixPath(path).name) for path in digests):
        print("Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to deploy? (y/n) ",
              end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("Canceling deploy...")
            return "canceled", digests, None

    print(f"Initiating DAG deploy for: {deployment_id}", flush=True)
    time.sleep(args.standin_upload_seconds)
    _wait_while_held(state_dir)
    _replace_dags(state_dir, deployment_id, bundle, dags_path)
    version = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with _bundles_locked(state_dir, deployment_id) as bundles:
        bundles[bundle] = version
    waited = " Navigate to the Airflow UI to confirm that your deploy was successful."
    if not args.wait:
        waited += " The Airflow UI takes about 1 minute to update."
    print(f"\nSuccessfully uploaded DAGs with version {BOLD}{version}{RESET} to Astro.{waited}\n\n"
          f" Access your Deployment:\n\n Deployment View: {BOLD}local/{deployment_id}{RESET}\n"
          f" Airflow UI: {BOLD}local/{deployment_id}/airflow{RESET}")
    return "deployed", digests, version


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.standin_state_dir is None:
            raise CliError("the local stand-in needs --standin-state-dir: run it through write_standin_wrapper")
        if args.command not in ("deploy", "deployment"):
            raise CliError("the local stand-in only runs `astro deploy` and `astro deployment bundle create|list`")
        # In the real CLI's order: authentication, then the project folder, then the deploy's own checks.
        if not os.environ.get("ASTRO_API_TOKEN"):
            raise CliError("not logged in: set ASTRO_API_TOKEN (the local stand-in has no interactive login)")
        if args.command == "deployment":
            _bundle_command(args, args.standin_state_dir)
            return 0
        print("Using an Astro API Token")
        if not (Path.cwd() / ".astro" / "config.yaml").is_file():
            raise CliError("this is not an Astro project directory.\nChange to another directory or run astro dev "
                           "init to turn your working directory into an Astro project")
        _check_arguments(args)
        print("Authenticated to Astro \n")
        started = time.time()
        outcome, received, version = _deploy(args, args.standin_state_dir)
        record = {"deployment_id": args.deployment_id or args.deployment_name,
                  "bundle": args.dag_bundle_name or MAIN_BUNDLE, "start": started, "end": time.time(),
                  "files": len(received), "outcome": outcome, "version": version, "received": received}
        with open(args.standin_state_dir / INVOCATIONS_LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
    except CliError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 1 if outcome == "failed" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
