"""Deploy: every repo of the deployment reaches Astro, and nothing counts as deployed but the CLI's success line.

Each behaviour of the real astro CLI is played by a small executable written into the test's folder; the
project's own stand-in (local_mode/astro_standin.py) runs end to end at the end of the file.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from testkit import (
    CLI_OUTCOMES, DAG_BUCKET, SUCCESS, VERSION, FakeLambdaContext, emitted_metrics, store_astro_targets,
)

from local_mode.astro_standin import (
    bundle_versions,
    configure_deployment,
    create_bundle,
    deploys_held,
    last_bundle,
    read_invocations,
    wait_for_held_deploys,
    write_standin_wrapper,
)
from functions.deploy import app, deploying
from functions.deploy.warm_bundle import KEPT_FOLDER, kept_path
from functions.deploy.work_folders import IN_USE_FILE, WORK_PREFIX
from functions.deploy.astro_cli import redact
from functions.shared.aws import client
from functions.shared.dag_bundles import lock_key
from functions.shared.deferred_ships import deferred_in, defer, read_deferred, ships_key, told_in
from functions.shared.execution_state import RunScope
from functions.shared.locking import acquire, current_holder
from functions.shared.manifest import fingerprint, read_bundle_ship, read_repo_manifest, stored_files
from functions.shared.plan_store import Plan, PlannedFile, save_plan
from functions.shared.ship_slot import ShipSlot, hand_over, ship_in_flight
from functions.shared.errors import (
    AstroConfigError,
    AstroDeployFailed,
    AstroUnavailable,
    BundleFailed,
    BundleMissing,
    EmptyBundleRefused,
    LockLost,
    ShipInFlight,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXRva2VuIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
TARGETS = {
    "ws/dep": {"deploymentId": "dep-id-1", "workspaceId": "ws-id-1"},
    "ws/dep2": {"deploymentId": "dep-id-2", "workspaceId": "ws-id-1"},
    "ws/no-workspace-id": {"deploymentId": "dep-id-3"},
}
CLI_VARIABLES = {"PATH", "HOME", "ASTRO_HOME", "ASTRO_API_TOKEN", "ASTRO_TELEMETRY_DISABLED", "LANG", "LC_ALL"}


def state_after_upload(deployment: str = "dep", commit: str | None = "abc123", allow_empty: bool = False,
                       bundle: str = "main") -> dict:
    """Deploy's event: the Parse summary plus the results of ClearPrefix and Upload."""
    return {
        "workspace": "ws", "deployment": deployment, "repo": "repo-a", "commit": commit, "execution": "exec-1",
        "bundle": bundle, "prefix": f"dags/ws/{deployment}/repo-a/", "plan": f"s3://{DAG_BUCKET}/plans/exec-1.json",
        "files": 1, "bytes": 4, "dag_count": 1, "dag_ids": ["etl"], "lock_key": lock_key("ws", deployment, bundle),
        "allow_empty_deployment": allow_empty, "warnings": [],
        "clear": {"prefix": f"dags/ws/{deployment}/repo-a/", "deleted": 0},
        "upload": {"prefix": f"dags/ws/{deployment}/repo-a/", "copied": 1, "bytes": 4},
    }


class FakeCli:
    """Writes executables that record how they were called, then behave as a given piece of Python says."""

    def __init__(self, folder: Path, monkeypatch):
        self.folder = folder
        self.calls_file = folder / "calls.jsonl"
        self.monkeypatch = monkeypatch

    def install(self, behaviour: str) -> Path:
        script = self.folder / "astro"
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            "from pathlib import Path\n"
            "args = sys.argv[1:]\n"
            "dags = Path(args[args.index('--dags-path') + 1]) if '--dags-path' in args else None\n"
            "home_config = Path(os.environ['HOME'], '.astro', 'config.yaml')\n"
            "record = {\n"
            "    'argv': args, 'cwd': os.getcwd(), 'env': dict(os.environ), 'stdin': sys.stdin.read(),\n"
            "    'files': {p.relative_to(dags).as_posix(): p.read_text() for p in dags.rglob('*') if p.is_file()}\n"
            "    if dags else {},\n"
            "    'project_config': Path('.astro', 'config.yaml').read_text(),\n"
            "    'home_config': home_config.read_text(),\n"
            "}\n"
            f"with open({str(self.calls_file)!r}, 'a') as log:\n"
            "    log.write(json.dumps(record) + '\\n')\n"
            f"{behaviour}\n"
        )
        script.chmod(0o755)
        self.monkeypatch.setenv("ASTRO_CLI", str(script))
        return script

    @property
    def calls(self) -> list[dict]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]


@pytest.fixture(autouse=True)
def astro_retry_waits(monkeypatch) -> list[float]:
    """The waits Deploy took before trying a deploy again, which take no time here."""
    waits: list[float] = []
    monkeypatch.setattr(deploying, "sleep", waits.append)
    return waits


@pytest.fixture
def work_root(tmp_path, monkeypatch) -> Path:
    """Lambda's /tmp for the test: where the deploy step makes its work folders."""
    root = tmp_path / "lambda-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def deploy_env(buckets, monkeypatch, work_root):
    """The deploy function's environment, with the Astro token in Secrets Manager."""
    secret_arn = client("secretsmanager").create_secret(Name="astro-token", SecretString=TOKEN)["ARN"]
    for name, value in {
        "DAG_BUCKET": DAG_BUCKET,
        "ASTRO_TOKEN_SECRET_ARN": secret_arn,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "KEPT_BUNDLES_BYTES": str(1024**3),
    }.items():
        monkeypatch.setenv(name, value)
    store_astro_targets(monkeypatch, TARGETS)
    for inherited in ("ASTRO_DOMAIN", "SSL_CERT_FILE"):
        monkeypatch.delenv(inherited, raising=False)
    parameters.clear_caches()
    yield buckets
    parameters.clear_caches()


@pytest.fixture
def fake_cli(tmp_path, monkeypatch) -> FakeCli:
    folder = tmp_path / "fake-cli"
    folder.mkdir()
    return FakeCli(folder, monkeypatch)


@pytest.fixture
def log_output():
    """What the deploy step logs (powertools' handler keeps the stream it was made with)."""
    handler = app.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def put(s3, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        s3.put_object(Bucket=DAG_BUCKET, Key=key, Body=body)


def seed_deployment(s3) -> None:
    put(s3, {
        "dags/ws/dep/repo-a/etl.py": b"from airflow import DAG\n",
        "dags/ws/dep/repo-a/sql/q.sql": b"select 1",
        "dags/ws/dep/repo-b/pkg/helper.py": b"VALUE = 1\n",
        "dags/ws/dep/repo-b/": b"",  # a folder marker, as the S3 console makes them
        "dags/ws/dep2/repo-c/other.py": b"not this deployment",
        "dags/ws2/dep/repo-d/other.py": b"not this workspace",
    })


# ---- the bundle ----


def test_bundle_holds_every_repo_of_the_deployment_and_nothing_else(deploy_env, fake_cli, lambda_context):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)

    result = app.handler(state_after_upload(), lambda_context)

    assert fake_cli.calls[0]["files"] == {
        "repo-a/etl.py": "from airflow import DAG\n",
        "repo-a/sql/q.sql": "select 1",
        "repo-b/pkg/helper.py": "VALUE = 1\n",
    }
    archives = result.pop("archives")
    assert result == {"deployment_id": "dep-id-1", "bundle": "main", "version": VERSION, "files": 3, "bytes": 42,
                      "repos": ["repo-a", "repo-b"], "files_kept": 0, "carried": [], "carried_by": None,
                      "lock_handed_over": False, "astro_retries": []}
    # No repo had an archive: each was read object by object, then archived for the next ship.
    assert [(archive["key"], archive["written"], archive["files"]) for archive in archives] == [
        ("archives/ws/dep/repo-a.zip", True, 2), ("archives/ws/dep/repo-b.zip", True, 1)]


def test_a_ship_lists_the_deployment_once_and_records_each_repos_files_from_that_listing(deploy_env, fake_cli,
                                                                                          lambda_context):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)
    listings: list[str] = []
    client("s3").meta.events.register("provide-client-params.s3.ListObjectsV2",
                                      lambda params, **_: listings.append(params["Prefix"]))

    app.handler(state_after_upload(), lambda_context)

    assert listings == ["dags/ws/dep/"]
    # The ship's record holds what a listing of the prefixes now says: the gathering's listing, not a second one.
    recorded = {repo.repo: (repo.files, repo.fingerprint) for repo in read_bundle_ship(DAG_BUCKET, "ws", "dep",
                                                                                          "main").repos}
    assert recorded == {repo: (len(files), fingerprint(files))
                        for repo, files in stored_files(DAG_BUCKET, "ws", "dep").items()}
    assert set(recorded) == {"repo-a", "repo-b"}


def test_an_archive_that_cannot_be_written_is_in_the_result_and_the_ship_succeeds(deploy_env, fake_cli,
                                                                                   lambda_context, caplog):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)

    def refuse(params, **_):
        if params["Key"].startswith("archives/"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "injected"}}, "PutObject")

    client("s3").meta.events.register("provide-client-params.s3.PutObject", refuse)
    result = app.handler(state_after_upload(), lambda_context)

    assert result["version"] == VERSION and len(fake_cli.calls) == 1
    assert [(archive["written"], "AccessDenied" in archive["error"]) for archive in result["archives"]] == [
        (False, True), (False, True)]
    assert "archives not written" in caplog.text


def test_bundle_of_more_than_one_listing_page(deploy_env, fake_cli, lambda_context):
    put(deploy_env, {f"dags/ws/dep/repo-a/dag_{number:04}.py": b"x" for number in range(1001)})
    fake_cli.install(SUCCESS)

    assert app.handler(state_after_upload(), lambda_context)["files"] == 1001
    assert len(fake_cli.calls[0]["files"]) == 1001


def test_unsafe_keys_are_refused_before_anything_is_written(deploy_env, fake_cli, lambda_context, work_root):
    put(deploy_env, {
        "dags/ws/dep/repo-a/etl.py": b"ok",
        "dags/ws/dep/repo-a/../../escape.py": b"outside",
        "dags/ws/dep/loose.py": b"no repo folder",
        "dags/ws/dep/repo-b/x": b"a file",
        "dags/ws/dep/repo-b/x/y.py": b"under that file",
    })
    fake_cli.install(SUCCESS)

    with pytest.raises(BundleFailed) as raised:
        app.handler(state_after_upload(), lambda_context)

    message = str(raised.value)
    assert message.startswith("3 objects under s3://test-dag-bucket/dags/ws/dep/ cannot be shipped safely")
    assert "dags/ws/dep/repo-a/../../escape.py: the path escapes its folder with '..'" in message
    assert "dags/ws/dep/loose.py: not inside a repo folder" in message
    assert "dags/ws/dep/repo-b/x/y.py: needs repo-b/x as a folder" in message
    assert fake_cli.calls == []
    assert list(work_root.iterdir()) == []


def test_an_empty_bundle_is_refused_before_the_cli_runs(deploy_env, fake_cli, lambda_context, capsys):
    put(deploy_env, {"dags/ws/dep2/repo-c/other.py": b"another deployment's"})
    fake_cli.install(SUCCESS)

    with pytest.raises(EmptyBundleRefused, match=r"dags/ws/dep/ holds no files: deploying it would remove every "
                                                 r"DAG of Astro deployment dep-id-1\. Send allow_empty_deployment"):
        app.handler(state_after_upload(), lambda_context)

    assert fake_cli.calls == []
    assert emitted_metrics(capsys.readouterr().out, deployment="dep")["deploy.success"] == 0


def test_a_bundle_without_any_python_file_is_refused(deploy_env, fake_cli, lambda_context):
    put(deploy_env, {"dags/ws/dep/repo-a/sql/q.sql": b"select 1"})
    fake_cli.install(SUCCESS)

    with pytest.raises(EmptyBundleRefused, match="holds 1 file but no .py file"):
        app.handler(state_after_upload(), lambda_context)
    assert fake_cli.calls == []


def test_an_empty_deployment_is_deployed_when_the_request_says_so(deploy_env, fake_cli, lambda_context):
    fake_cli.install(SUCCESS)

    result = app.handler(state_after_upload(allow_empty=True), lambda_context)

    assert result == {"deployment_id": "dep-id-1", "bundle": "main", "version": VERSION, "files": 0, "bytes": 0,
                      "repos": [], "files_kept": 0, "archives": [], "carried": [], "carried_by": None,
                      "lock_handed_over": False, "astro_retries": []}
    call = fake_cli.calls[0]
    assert call["files"] == {}
    # The CLI's own "No DAGs found" prompt would cancel the deploy the request asked for.
    assert "show_warnings: false" in call["home_config"]


# ---- how the CLI is called ----


def test_cli_arguments_environment_and_work_folder(deploy_env, fake_cli, lambda_context, monkeypatch):
    seed_deployment(deploy_env)
    monkeypatch.setenv("ASTRO_DOMAIN", "astronomer.example")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/cert.pem")
    fake_cli.install(SUCCESS)

    app.handler(state_after_upload(), lambda_context)

    call = fake_cli.calls[0]
    work = call["cwd"]
    assert call["argv"] == ["deploy", "dep-id-1", "--dags", "--dags-path", f"{work}/dags", "-f",
                            "--description", "repo-a abc123 exec-1", "--workspace-id", "ws-id-1"]
    env = call["env"]
    assert set(env) - {"LC_CTYPE"} == CLI_VARIABLES | {"ASTRO_DOMAIN", "SSL_CERT_FILE"}
    assert env["ASTRO_API_TOKEN"] == TOKEN
    assert env["HOME"] == env["ASTRO_HOME"] == f"{work}/home"
    assert env["ASTRO_TELEMETRY_DISABLED"] == "1" and env["LANG"] == env["LC_ALL"] == "C.UTF-8"
    assert env["ASTRO_DOMAIN"] == "astronomer.example" and env["SSL_CERT_FILE"] == "/etc/ssl/cert.pem"
    assert env["PATH"] == os.environ["PATH"]
    assert call["stdin"] == ""
    assert call["project_config"] == ""
    assert "upgrade_message: false" in call["home_config"]


def test_no_workspace_id_flag_without_a_configured_workspace_and_no_commit(deploy_env, fake_cli, lambda_context):
    put(deploy_env, {"dags/ws/no-workspace-id/repo-a/etl.py": b"x"})
    fake_cli.install(SUCCESS)

    app.handler(state_after_upload(deployment="no-workspace-id", commit=None), lambda_context)

    argv = fake_cli.calls[0]["argv"]
    assert "--workspace-id" not in argv
    assert argv[1] == "dep-id-3" and argv[-2:] == ["--description", "repo-a exec-1"]


def test_every_invocation_works_in_a_fresh_folder_removed_afterwards_but_for_its_bundle(
        deploy_env, fake_cli, lambda_context, work_root):
    seed_deployment(deploy_env)
    fake_cli.install("Path(os.environ['HOME'], 'leftover').write_text('x')\n" + SUCCESS)

    app.handler(state_after_upload(), lambda_context)
    app.handler(state_after_upload(), lambda_context)

    first, second = (call["cwd"] for call in fake_cli.calls)
    assert first != second
    assert Path(first).parent == Path(second).parent == work_root
    assert list(work_root.iterdir()) == [work_root / KEPT_FOLDER]
    kept = kept_path(work_root, DAG_BUCKET, "dags/ws/dep/")
    assert sorted(str(path.relative_to(kept)) for path in kept.rglob("*") if path.is_file()) == [
        "bundle.json", "dags/repo-a/etl.py", "dags/repo-a/sql/q.sql", "dags/repo-b/pkg/helper.py", "usage.json"]
    assert all(TOKEN not in path.read_text() for path in kept.rglob("*") if path.is_file())


def test_a_work_folder_left_by_a_stopped_invocation_is_removed_by_the_next_token_and_all(
        deploy_env, fake_cli, lambda_context, work_root):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)
    # Lambda ended a timed-out invocation's process in the middle of its ship: no `finally` ran.
    stopped = work_root / f"{WORK_PREFIX}stopped"
    (stopped / "home" / ".astro").mkdir(parents=True)
    (stopped / IN_USE_FILE).touch()
    (stopped / "home" / ".astro" / "config.yaml").write_text(f"token: {TOKEN}\n")

    app.handler(state_after_upload(), lambda_context)

    assert list(work_root.iterdir()) == [work_root / KEPT_FOLDER]
    assert fake_cli.calls[0]["cwd"] != str(stopped)


def test_unknown_deployment_fails_before_the_cli_runs(deploy_env, fake_cli, lambda_context, work_root):
    put(deploy_env, {"dags/ws/unknown/repo-a/etl.py": b"x"})
    fake_cli.install(SUCCESS)

    with pytest.raises(AstroConfigError, match=r"workspace 'ws', deployment 'unknown'.*astroDeployments.*cdk\.json"):
        app.handler(state_after_upload(deployment="unknown"), lambda_context)
    assert fake_cli.calls == []
    assert list(work_root.iterdir()) == []


def test_an_unreadable_token_fails_before_the_cli_runs(deploy_env, fake_cli, lambda_context, monkeypatch):
    seed_deployment(deploy_env)
    monkeypatch.setenv("ASTRO_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone-AbCdEf")
    fake_cli.install(SUCCESS)

    with pytest.raises(AstroConfigError, match="the Astro API token cannot be read from the secret arn:aws"):
        app.handler(state_after_upload(), lambda_context)
    assert fake_cli.calls == []


def test_the_token_is_read_once_and_cached(deploy_env, fake_cli, lambda_context):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)
    app.handler(state_after_upload(), lambda_context)
    client("secretsmanager").put_secret_value(SecretId="astro-token", SecretString="rotated")

    app.handler(state_after_upload(), lambda_context)

    assert [call["env"]["ASTRO_API_TOKEN"] for call in fake_cli.calls] == [TOKEN, TOKEN]


# ---- what the CLI's outcomes mean ----


@pytest.mark.parametrize(("behaviour", "error", "message"), CLI_OUTCOMES.values(), ids=CLI_OUTCOMES.keys())
def test_cli_outcomes(deploy_env, fake_cli, lambda_context, capsys, astro_retry_waits, behaviour, error, message):
    seed_deployment(deploy_env)
    fake_cli.install(behaviour)

    with pytest.raises(AstroDeployFailed) as raised:
        app.handler(state_after_upload(), lambda_context)

    assert raised.type is error
    assert raised.match(message)
    assert "Last lines of the astro CLI output (redacted):" in str(raised.value)
    assert emitted_metrics(capsys.readouterr().out, deployment="dep")["deploy.success"] == 0
    # Only a transient error is tried again, after each wait, on the same bundle.
    transient = error is AstroUnavailable
    assert astro_retry_waits == (list(deploying.ASTRO_RETRY_WAITS_SECONDS) if transient else [])
    calls = fake_cli.calls
    assert len(calls) == (1 + len(deploying.ASTRO_RETRY_WAITS_SECONDS) if transient else 1)
    assert all(call["files"] == calls[0]["files"] for call in calls)
    # The console's error says that it was tried again, and after which waits.
    assert ("Astro was unavailable at each of 4 attempts (waits of 30 s, 60 s, 120 s between them); the last: "
            in str(raised.value)) is transient


def test_a_deploy_astro_was_unavailable_for_succeeds_once_astro_answers(
    deploy_env, fake_cli, lambda_context, astro_retry_waits
):
    seed_deployment(deploy_env)
    fails_twice = (f"if len(open({str(fake_cli.calls_file)!r}).readlines()) <= 2:\n"
                   "    print('Error: 502 Bad Gateway', file=sys.stderr); sys.exit(1)\n" + SUCCESS)
    fake_cli.install(fails_twice)

    result = app.handler(state_after_upload(), lambda_context)

    assert result["version"] == VERSION and len(fake_cli.calls) == 3
    assert astro_retry_waits == list(deploying.ASTRO_RETRY_WAITS_SECONDS[:2])
    # The state's output shows the attempts Astro was unavailable for, which the console has no other trace of.
    assert [retry["waited_seconds"] for retry in result["astro_retries"]] == [30, 60]
    assert all(retry["error"].startswith("astro deploy") and "\n" not in retry["error"]
               for retry in result["astro_retries"])


def test_no_wait_is_taken_that_leaves_too_little_time_for_another_deploy(
    deploy_env, fake_cli, lambda_context, astro_retry_waits
):
    seed_deployment(deploy_env)
    fake_cli.install('print("Error: 503 Service Unavailable", file=sys.stderr); sys.exit(1)')
    # 30 s of wait would leave less than the CLI's minimum before the deadline's margin.
    lambda_context.remaining_ms = (deploying.ASTRO_RETRY_WAITS_SECONDS[0] + deploying.DEADLINE_MARGIN_SECONDS) * 1000

    with pytest.raises(AstroUnavailable):
        app.handler(state_after_upload(), lambda_context)

    assert len(fake_cli.calls) == 1 and astro_retry_waits == []


def test_the_cli_output_carried_by_an_error_is_its_last_lines(deploy_env, fake_cli, lambda_context):
    seed_deployment(deploy_env)
    fake_cli.install("for number in range(100):\n    print(f'line {number}')\nsys.exit(1)")

    with pytest.raises(AstroDeployFailed) as raised:
        app.handler(state_after_upload(), lambda_context)

    tail = str(raised.value).split("(redacted):\n", 1)[1]
    assert tail.splitlines() == [f"line {number}" for number in range(80, 100)]


def process_is_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_hanging_cli_is_killed_with_its_children_before_the_deadline(deploy_env, fake_cli, tmp_path):
    seed_deployment(deploy_env)
    child_pid_file = tmp_path / "child.pid"
    fake_cli.install(
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"Path({str(child_pid_file)!r}).write_text(str(child.pid))\n"
        "print('Initiating DAG deploy for: dep-id-1', flush=True)\n"
        "time.sleep(60)"
    )
    # 32 s before the deadline leaves the CLI 2 s after the 30 s margin.
    context = FakeLambdaContext(remaining_ms=32_000)
    started = time.monotonic()

    with pytest.raises(AstroDeployFailed) as raised:
        app.handler(state_after_upload(), context)

    assert time.monotonic() - started < 15
    assert raised.type is AstroDeployFailed
    assert raised.match(r"did not finish within 2 s and was killed before the Lambda's deadline; the deploy may "
                        r"or may not have reached Astro")
    assert "Initiating DAG deploy for: dep-id-1" in str(raised.value)
    child_pid = int(child_pid_file.read_text())
    deadline = time.monotonic() + 5
    while not process_is_gone(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_is_gone(child_pid)


def test_too_little_time_left_fails_without_running_the_cli(deploy_env, fake_cli):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)

    with pytest.raises(AstroDeployFailed, match="too little to run astro deploy: raise deployTimeoutSeconds"):
        app.handler(state_after_upload(), FakeLambdaContext(remaining_ms=20_000))
    assert fake_cli.calls == []


def test_a_missing_cli_executable(deploy_env, lambda_context, monkeypatch, tmp_path):
    seed_deployment(deploy_env)
    monkeypatch.setenv("ASTRO_CLI", str(tmp_path / "nowhere" / "astro"))

    with pytest.raises(AstroDeployFailed, match=r"the astro CLI '.*nowhere/astro' was not found: the image installs "
                                                r"it at /usr/local/bin/astro; check the ASTRO_CLI setting"):
        app.handler(state_after_upload(), lambda_context)


def test_an_unwritable_tmp_fails_before_the_cli_runs(deploy_env, fake_cli, lambda_context, monkeypatch, tmp_path):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_folder / "tmp"))

    with pytest.raises(AstroDeployFailed, match="the astro CLI's work folder cannot be made in .*: Not a directory; "
                                                "the deploy function needs a writable /tmp"):
        app.handler(state_after_upload(), lambda_context)
    assert fake_cli.calls == []


# ---- the token never leaks ----


@pytest.mark.parametrize("token", [TOKEN, "plain-secret-value-123"], ids=["jwt", "not-a-jwt"])
def test_a_token_echoed_by_the_cli_is_redacted_from_errors_and_logs(deploy_env, fake_cli, lambda_context,
                                                                    log_output, capsys, token):
    client("secretsmanager").put_secret_value(SecretId="astro-token", SecretString=token)
    seed_deployment(deploy_env)
    fake_cli.install(
        "token = os.environ['ASTRO_API_TOKEN']\n"
        "print(f'debug: token={token}')\n"
        "print(f'Authorization: Bearer {token}', file=sys.stderr)\n"
        "sys.exit(1)"
    )

    with pytest.raises(AstroDeployFailed) as raised:
        app.handler(state_after_upload(), lambda_context)

    message = str(raised.value)
    assert token not in message
    assert "debug: token=[REDACTED]" in message and "Authorization: Bearer [REDACTED]" in message
    assert token not in log_output.getvalue() and token not in capsys.readouterr().out


def test_a_token_echoed_on_success_stays_out_of_logs_output_and_metrics(deploy_env, fake_cli, lambda_context,
                                                                        log_output, capsys):
    seed_deployment(deploy_env)
    fake_cli.install("print('using ' + os.environ['ASTRO_API_TOKEN'])\n" + SUCCESS)

    result = app.handler(state_after_upload(), lambda_context)

    logs = log_output.getvalue()
    assert "using [REDACTED]" in logs and "Successfully uploaded DAGs with version" in logs
    assert TOKEN not in logs and TOKEN not in json.dumps(result) and TOKEN not in capsys.readouterr().out


def test_redaction_covers_the_token_any_jwt_and_bearer_values():
    text = "a secret-1 b eyJabcdef.eyJghijkl.sig c Bearer opaque-value d"
    assert redact(text, ["secret-1"]) == "a [REDACTED] b [REDACTED] c Bearer [REDACTED] d"


# ---- metrics ----


def test_metrics_of_a_deploy(deploy_env, fake_cli, lambda_context, capsys):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)

    app.handler(state_after_upload(), lambda_context)

    metrics = emitted_metrics(capsys.readouterr().out, workspace="ws", deployment="dep", repo="repo-a")
    assert metrics["deploy.success"] == 1 and metrics["deploy.files"] == 3 and metrics["deploy.bytes"] == 42
    assert metrics["deploy.time"] > 0


# ---- what is live ----


def save_repo_a_plan() -> None:
    save_plan(DAG_BUCKET, Plan(
        workspace="ws", deployment="dep", repo="repo-a", commit="abc123", execution="exec-1",
        prefix="dags/ws/dep/repo-a/",
        files=[PlannedFile(source_bucket="s", source_key="k/etl.py", etag='"00ff"', size=23, path="etl.py",
                           kind="dag", dag_ids=["etl"]),
               PlannedFile(source_bucket="s", source_key="k/q.sql", etag='"11ee"', size=8, path="sql/q.sql",
                           kind="dependency")],
    ))


def test_a_ship_astro_accepted_is_recorded_as_live(deploy_env, fake_cli, lambda_context, capsys):
    seed_deployment(deploy_env)
    save_repo_a_plan()
    fake_cli.install(SUCCESS)

    app.handler(state_after_upload(), lambda_context)

    manifest = read_repo_manifest(DAG_BUCKET, "ws", "dep", "repo-a")
    assert (manifest.execution, manifest.commit, manifest.bundle_version, manifest.deployment_id) == (
        "exec-1", "abc123", VERSION, "dep-id-1")
    assert manifest.dags() == [{"dag_id": "etl", "path": "etl.py"}]
    ship = read_bundle_ship(DAG_BUCKET, "ws", "dep", "main")
    assert (ship.state, ship.version, [shipped.repo for shipped in ship.repos]) == (
        "shipped", VERSION, ["repo-a", "repo-b"])
    assert emitted_metrics(capsys.readouterr().out, repo="repo-a")["deploy.recorded"] == 1


@pytest.fixture
def repo_b_deferred(deploy_env, lock_table, monkeypatch) -> str:
    """repo-b's execution changed its prefix and deferred its ship (functions/shared/deferred_ships.py)."""
    monkeypatch.setenv("LOCK_TABLE", lock_table)
    monkeypatch.setenv("LOCK_LEASE_SECONDS", "600")
    save_plan(DAG_BUCKET, Plan(
        workspace="ws", deployment="dep", repo="repo-b", commit="bbb222", execution="exec-b", prefix="dags/ws/dep/repo-b/",
        files=[PlannedFile(source_bucket="s", source_key="k/helper.py", etag='"22dd"', size=10, path="pkg/helper.py",
                           kind="dependency")],
    ))
    acquire(lock_table, "ws/dep", "exec-b", 600, 900)
    defer(lock_table, "ws/dep", RunScope(workspace="ws", deployment="dep", repo="repo-b", execution="exec-b"),
          "token-b")
    return lock_table


def test_a_ship_carries_the_deferred_changes_records_them_live_and_tells_their_executions(
    deploy_env, repo_b_deferred, fake_cli, lambda_context
):
    seed_deployment(deploy_env)
    save_repo_a_plan()
    fake_cli.install(SUCCESS)
    acquire(repo_b_deferred, "ws/dep", "exec-1", 600, 900)

    result = app.handler(state_after_upload(), lambda_context)

    assert result["carried"] == ["exec-b"] and result["repos"] == ["repo-a", "repo-b"]
    # The lock was handed over to the ship, and the ship ended: neither is held any more.
    assert result["lock_handed_over"] is True
    assert current_holder(repo_b_deferred, "ws/dep") is None and ship_in_flight(repo_b_deferred, "ws/dep") is None
    carried = read_repo_manifest(DAG_BUCKET, "ws", "dep", "repo-b")
    assert (carried.execution, carried.commit, carried.bundle_version) == ("exec-b", "bbb222", VERSION)
    assert [entry.stored_etag for entry in carried.files] == [
        stored_files(DAG_BUCKET, "ws", "dep", "repo-b")["repo-b"]["pkg/helper.py"]]
    assert read_bundle_ship(DAG_BUCKET, "ws", "dep", "main").carried == ["exec-b"]
    # Told at the lock's release, by the waker: the version that carries exec-b's commit, and whose ship it was.
    item = client("dynamodb").get_item(TableName=repo_b_deferred, Key={"lock_key": {"S": ships_key("ws/dep")}})["Item"]
    assert deferred_in(item) == []
    [told] = told_in(item)
    assert (told.execution, told.task_token) == ("exec-b", "token-b")
    assert json.loads(told.outcome) == {
        "shipped": True, "reason": "carried by the ship of execution exec-1", "shipped_by": "exec-1",
        "deployment_id": "dep-id-1", "bundle": "main", "version": VERSION, "failed_ships": [],
    }


def test_a_deferred_execution_back_for_the_lock_after_a_ship_carried_it_ships_nothing_again(
    deploy_env, repo_b_deferred, fake_cli, lambda_context
):
    seed_deployment(deploy_env)
    save_repo_a_plan()
    fake_cli.install(SUCCESS)
    acquire(repo_b_deferred, "ws/dep", "exec-1", 600, 900)
    app.handler(state_after_upload(), lambda_context)  # exec-1's ship carries exec-b's change
    exec_b_back = {**state_after_upload(), "repo": "repo-b", "commit": "bbb222", "execution": "exec-b",
                   "ship_or_defer": {"defer": True, "reason": "others waited", "waiting": ["exec-1"]}}

    result = app.handler(exec_b_back, lambda_context)

    assert len(fake_cli.calls) == 1
    assert (result["version"], result["carried_by"], result["files"]) == (VERSION, "exec-1", 0)


def test_a_deferred_execution_back_for_the_lock_ships_when_no_ship_carried_it(
    deploy_env, repo_b_deferred, fake_cli, lambda_context
):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)
    exec_b_back = {**state_after_upload(), "repo": "repo-b", "commit": "bbb222", "execution": "exec-b",
                   "ship_or_defer": {"defer": True, "reason": "others waited", "waiting": ["exec-1"]}}
    acquire(repo_b_deferred, "ws/dep", "exec-b", 600, 900)

    result = app.handler(exec_b_back, lambda_context)

    # Its own deferred entry goes with its ship, untold.
    assert len(fake_cli.calls) == 1 and result["carried_by"] is None and result["carried"] == []
    assert read_deferred(repo_b_deferred, "ws/dep") == []


def test_a_failed_ship_leaves_the_changes_it_carried_deferred_and_says_it_failed(
    deploy_env, repo_b_deferred, fake_cli, lambda_context
):
    seed_deployment(deploy_env)
    fake_cli.install('print("Error: something unexpected", file=sys.stderr); sys.exit(2)')
    acquire(repo_b_deferred, "ws/dep", "exec-1", 600, 900)

    with pytest.raises(AstroDeployFailed):
        app.handler(state_after_upload(), lambda_context)

    [entry] = read_deferred(repo_b_deferred, "ws/dep")
    assert (entry.execution, entry.failed_ships) == ("exec-b", ("exec-1",))
    assert read_repo_manifest(DAG_BUCKET, "ws", "dep", "repo-b") is None
    # The failed ship keeps its slot, with the repos it changed, for Rollback to end once repo-a is back.
    assert current_holder(repo_b_deferred, "ws/dep") is None
    assert ship_in_flight(repo_b_deferred, "ws/dep") == ShipSlot(
        holder="exec-1", repos=("repo-a", "repo-b"), expires_at=ship_in_flight(repo_b_deferred, "ws/dep").expires_at)


def test_nothing_is_gathered_while_another_ship_is_in_flight(deploy_env, repo_b_deferred, fake_cli, lambda_context):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)
    acquire(repo_b_deferred, "ws/dep", "exec-0", 600, 900)
    hand_over(repo_b_deferred, "ws/dep", "exec-0", ["repo-c"], 600)
    acquire(repo_b_deferred, "ws/dep", "exec-1", 600, 900)

    with pytest.raises(ShipInFlight, match="the ship of execution exec-0 to ws/dep is still uploading"):
        app.handler(state_after_upload(), lambda_context)

    # Still the lock's holder (it defers next), the CLI never ran, the deferred change left for the next ship.
    assert current_holder(repo_b_deferred, "ws/dep") == "exec-1" and fake_cli.calls == []
    assert [entry.execution for entry in read_deferred(repo_b_deferred, "ws/dep")] == ["exec-b"]


def test_a_ship_that_goes_on_under_the_lock_keeps_it(deploy_env, repo_b_deferred, fake_cli, lambda_context):
    # ShipDeferredChanges: the execution compares and changes its repo after this ship.
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)
    acquire(repo_b_deferred, "ws/dep", "exec-1", 600, 900)

    result = app.handler({**state_after_upload(), "keeps_lock": True}, lambda_context)

    assert result["lock_handed_over"] is False and result["carried"] == ["exec-b"]
    assert current_holder(repo_b_deferred, "ws/dep") == "exec-1" and ship_in_flight(repo_b_deferred, "ws/dep") is None


@pytest.mark.parametrize("shipped", [True, False], ids=["its ship landed", "no answer"])
def test_another_attempt_of_a_deploy_that_handed_the_lock_over_gathers_nothing(
    deploy_env, repo_b_deferred, fake_cli, lambda_context, shipped
):
    # Lambda's service errors are retried, and may come after the function ran: this attempt no longer holds the
    # lock, so it may only report the ship that landed.
    seed_deployment(deploy_env)
    save_repo_a_plan()
    fake_cli.install(SUCCESS)
    acquire(repo_b_deferred, "ws/dep", "exec-1", 600, 900)
    if shipped:
        app.handler(state_after_upload(), lambda_context)
    else:
        hand_over(repo_b_deferred, "ws/dep", "exec-1", ["repo-a"], 600)
    ships = read_bundle_ship(DAG_BUCKET, "ws", "dep", "main")

    if shipped:
        result = app.handler(state_after_upload(), lambda_context)
        assert (result["carried_by"], result["version"]) == ("exec-1", VERSION)
    else:
        with pytest.raises(LockLost, match="an earlier attempt of this Deploy handed it over to its ship"):
            app.handler(state_after_upload(), lambda_context)
    # Nothing gathered, announced or shipped again.
    assert len(fake_cli.calls) == (1 if shipped else 0)
    assert read_bundle_ship(DAG_BUCKET, "ws", "dep", "main") == ships


def test_a_ship_the_cli_did_not_confirm_leaves_the_bundle_shipping_and_the_repo_unrecorded(
    deploy_env, fake_cli, lambda_context
):
    seed_deployment(deploy_env)
    save_repo_a_plan()
    fake_cli.install('print("Error: something unexpected", file=sys.stderr); sys.exit(2)')

    with pytest.raises(AstroDeployFailed):
        app.handler(state_after_upload(), lambda_context)

    # Written before the CLI ran: Astro may hold what it sent.
    assert read_bundle_ship(DAG_BUCKET, "ws", "dep", "main").state == "shipping"
    assert read_repo_manifest(DAG_BUCKET, "ws", "dep", "repo-a") is None


def test_a_recovery_reship_leaves_the_bundle_unconfirmed_and_the_repo_record_as_it_was(
    deploy_env, fake_cli, lambda_context
):
    # The stopped execution's plan is not what the restored prefix holds: recording it would make a later push of
    # that plan look unchanged while Astro runs the restored files.
    seed_deployment(deploy_env)
    save_repo_a_plan()
    fake_cli.install(SUCCESS)

    result = app.handler({**state_after_upload(), "allow_empty_deployment": True, "record_live": False},
                         lambda_context)

    assert result["version"] == VERSION
    assert read_bundle_ship(DAG_BUCKET, "ws", "dep", "main").state == "shipping"
    assert read_repo_manifest(DAG_BUCKET, "ws", "dep", "repo-a") is None


def test_a_record_that_fails_leaves_the_deploy_standing_and_says_so(deploy_env, fake_cli, lambda_context, capsys,
                                                                      log_output):
    seed_deployment(deploy_env)
    fake_cli.install(SUCCESS)  # no plan to record from

    result = app.handler(state_after_upload(), lambda_context)

    assert result["version"] == VERSION
    assert emitted_metrics(capsys.readouterr().out, repo="repo-a")["deploy.recorded"] == 0
    assert "what is live could not be recorded" in log_output.getvalue()
    assert read_bundle_ship(DAG_BUCKET, "ws", "dep", "main").state == "shipping"


# ---- the project's stand-in for the astro CLI ----


@pytest.fixture
def standin(tmp_path, monkeypatch) -> Path:
    """The stand-in's state folder; ASTRO_CLI names its wrapper."""
    state = tmp_path / "astro-state"
    monkeypatch.setenv("ASTRO_CLI", str(write_standin_wrapper(tmp_path / "bin", state)))
    return state


def test_standin_end_to_end_replaces_the_deployments_dags(deploy_env, standin, lambda_context):
    seed_deployment(deploy_env)
    configure_deployment(standin, "dep-id-1", "ws-id-1")

    first = app.handler(state_after_upload(), lambda_context)
    assert last_bundle(standin, "dep-id-1") == ["repo-a/etl.py", "repo-a/sql/q.sql", "repo-b/pkg/helper.py"]

    deploy_env.delete_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/pkg/helper.py")
    second = app.handler(state_after_upload(), lambda_context)

    assert last_bundle(standin, "dep-id-1") == ["repo-a/etl.py", "repo-a/sql/q.sql"]
    assert first["version"] != second["version"] and second["repos"] == ["repo-a"]
    assert [(entry["deployment_id"], entry["files"], entry["outcome"]) for entry in read_invocations(standin)] == [
        ("dep-id-1", 3, "deployed"), ("dep-id-1", 2, "deployed")]


def test_standin_end_to_end_empties_a_deployment_on_request(deploy_env, standin, lambda_context):
    seed_deployment(deploy_env)
    app.handler(state_after_upload(), lambda_context)
    for key in ("dags/ws/dep/repo-a/etl.py", "dags/ws/dep/repo-a/sql/q.sql", "dags/ws/dep/repo-b/pkg/helper.py",
                "dags/ws/dep/repo-b/"):
        deploy_env.delete_object(Bucket=DAG_BUCKET, Key=key)

    assert app.handler(state_after_upload(allow_empty=True), lambda_context)["files"] == 0
    assert last_bundle(standin, "dep-id-1") == []


def test_standin_end_to_end_workspace_mismatch_is_not_a_deploy(deploy_env, standin, lambda_context):
    seed_deployment(deploy_env)
    configure_deployment(standin, "dep-id-1", "another-workspace")

    with pytest.raises(AstroDeployFailed, match="does not own Astro deployment dep-id-1"):
        app.handler(state_after_upload(), lambda_context)
    assert last_bundle(standin, "dep-id-1") == []


def run_standin(wrapper: Path, cwd: Path, *args: str, token: str | None = "token") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd / "home")}
    if token:
        env["ASTRO_API_TOKEN"] = token
    return subprocess.run([str(wrapper), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=30)


@pytest.fixture
def project(tmp_path) -> Path:
    """A working directory the real CLI accepts, with a dags folder holding one DAG file."""
    folder = tmp_path / "project"
    (folder / ".astro").mkdir(parents=True)
    (folder / ".astro" / "config.yaml").write_text("")
    (folder / "dags" / "repo-a").mkdir(parents=True)
    (folder / "dags" / "repo-a" / "etl.py").write_text("dag")
    return folder


def test_standin_prints_the_success_line_with_the_version_in_bold(tmp_path, project):
    state = tmp_path / "state"
    wrapper = write_standin_wrapper(tmp_path / "bin", state)

    run = run_standin(wrapper, project, "deploy", "dep-1", "--dags", "--dags-path", "dags", "-f")

    assert run.returncode == 0, run.stderr
    assert "Successfully uploaded DAGs with version \x1b[1m" in run.stdout
    assert last_bundle(state, "dep-1") == ["repo-a/etl.py"]


def test_standin_cancels_a_bundle_without_dags_even_with_force(tmp_path, project):
    state = tmp_path / "state"
    wrapper = write_standin_wrapper(tmp_path / "bin", state)
    (project / "dags" / "repo-a" / "etl.py").rename(project / "dags" / "repo-a" / "etl.txt")

    run = run_standin(wrapper, project, "deploy", "dep-1", "--dags", "-f")

    assert run.returncode == 0
    assert "No DAGs found" in run.stdout and "Canceling deploy..." in run.stdout
    assert "Successfully" not in run.stdout and last_bundle(state, "dep-1") == []
    assert read_invocations(state)[0]["outcome"] == "canceled"


def test_standin_takes_a_deployment_name_for_its_id(tmp_path, project):
    state = tmp_path / "state"
    wrapper = write_standin_wrapper(tmp_path / "bin", state)

    assert run_standin(wrapper, project, "deploy", "-n", "named", "--dags").returncode == 0
    assert last_bundle(state, "named") == ["repo-a/etl.py"]


STANDIN_REFUSALS = {
    "no deployment": (["deploy", "--dags", "-f"], "no Deployment given"),
    "image with dags": (["deploy", "dep-1", "--dags", "--image"], "cannot use both --dags and --image"),
    "parse": (["deploy", "dep-1", "--dags", "--parse"], "cannot run --parse or --pytest"),
    "pytest": (["deploy", "dep-1", "--dags", "--pytest"], "cannot run --parse or --pytest"),
    "image deploy": (["deploy", "dep-1", "-f"], "deploys DAGs only"),
    "bad wait time": (["deploy", "dep-1", "--dags", "--wait", "--wait-time", "soon"], "invalid duration"),
    "unknown flag": (["deploy", "dep-1", "--dags", "--deployment-id", "x"], "unrecognized arguments"),
    "other command": (["workspace", "switch", "ws"], "invalid choice"),
}


@pytest.mark.parametrize(("args", "message"), STANDIN_REFUSALS.values(), ids=STANDIN_REFUSALS.keys())
def test_standin_refuses_what_the_real_cli_refuses(tmp_path, project, args, message):
    state = tmp_path / "state"
    run = run_standin(write_standin_wrapper(tmp_path / "bin", state), project, *args)

    assert run.returncode == 1
    assert run.stderr.startswith("Error: ") and message in run.stderr
    assert read_invocations(state) == []


def test_standin_requires_a_token_and_a_project_folder(tmp_path, project):
    wrapper = write_standin_wrapper(tmp_path / "bin", tmp_path / "state")

    without_token = run_standin(wrapper, project, "deploy", "dep-1", "--dags", token=None)
    outside_project = run_standin(wrapper, project / "dags", "deploy", "dep-1", "--dags")

    assert without_token.returncode == 1 and "set ASTRO_API_TOKEN" in without_token.stderr
    assert outside_project.returncode == 1 and "this is not an Astro project directory" in outside_project.stderr


def overlapping(invocations: list[dict]) -> bool:
    spans = sorted((entry["start"], entry["end"]) for entry in invocations)
    return any(later_start < earlier_end for (_, earlier_end), (later_start, _) in zip(spans, spans[1:]))


def test_standin_log_shows_whether_deploys_of_a_deployment_overlapped(tmp_path, project):
    state = tmp_path / "state"
    wrapper = write_standin_wrapper(tmp_path / "bin", state, upload_seconds=0.5)
    deploy = ("deploy", "dep-1", "--dags", "-f")

    run_standin(wrapper, project, *deploy)
    run_standin(wrapper, project, *deploy)
    assert not overlapping(read_invocations(state))

    # Two deploys held until both have started: they overlap however slowly the machine starts them.
    runs = []
    threads = [threading.Thread(target=lambda: runs.append(run_standin(wrapper, project, *deploy)))
               for _ in range(2)]
    with deploys_held(state):
        for thread in threads:
            thread.start()
        wait_for_held_deploys(state, 2)
    for thread in threads:
        thread.join()
    assert [run.returncode for run in runs] == [0, 0]
    assert len(read_invocations(state)) == 4 and overlapping(read_invocations(state))


# ---- per-repo Dag bundles ----

PER_REPO_TARGETS = {
    "ws/dep": {"deploymentId": "dep-id-1", "dagBundles": "per-repo", "bundleNames": {"repo-b": "helpers"}},
    "ws/fixed": {"deploymentId": "dep-id-4", "dagBundles": "per-repo", "createBundles": False},
}


@pytest.fixture
def per_repo_env(deploy_env, monkeypatch):
    store_astro_targets(monkeypatch, PER_REPO_TARGETS)
    return deploy_env


def test_per_repo_ships_only_its_repo_at_the_bundle_root_to_its_bundle(per_repo_env, standin, lambda_context):
    seed_deployment(per_repo_env)

    result = app.handler(state_after_upload(bundle="repo-a"), lambda_context)

    assert result["bundle"] == "repo-a" and result["repos"] == ["repo-a"] and result["files"] == 2
    assert last_bundle(standin, "dep-id-1", "repo-a") == ["etl.py", "sql/q.sql"]
    assert last_bundle(standin, "dep-id-1") == []  # main untouched
    deploy = read_invocations(standin)[-1]
    assert (deploy["bundle"], deploy["outcome"], deploy["version"]) == ("repo-a", "deployed", result["version"])


def test_per_repo_creates_a_missing_bundle_once_and_leaves_the_others(per_repo_env, standin, lambda_context):
    seed_deployment(per_repo_env)
    other = {**state_after_upload(bundle="helpers"), "repo": "repo-b", "prefix": "dags/ws/dep/repo-b/"}

    first = app.handler(other, lambda_context)
    app.handler(state_after_upload(bundle="repo-a"), lambda_context)
    app.handler(state_after_upload(bundle="repo-a"), lambda_context)

    assert first["bundle"] == "helpers"  # the bundle Parse chose (bundleNames), shipped as it is
    assert bundle_versions(standin, "dep-id-1").keys() == {"main", "helpers", "repo-a"}
    assert bundle_versions(standin, "dep-id-1")["helpers"] == first["version"]
    assert last_bundle(standin, "dep-id-1", "helpers") == ["pkg/helper.py"]


def test_per_repo_bundle_missing_and_not_to_be_created_fails_before_shipping(per_repo_env, standin, lambda_context):
    put(per_repo_env, {"dags/ws/fixed/repo-a/etl.py": b"from airflow import DAG\n"})

    with pytest.raises(BundleMissing, match=r"has no Dag bundle repo-a and createBundles is false .*astro "
                                           r"deployment bundle create --deployment-id dep-id-4 --name repo-a"):
        app.handler(state_after_upload("fixed", bundle="repo-a"), lambda_context)
    assert read_invocations(standin) == []

    create_bundle(standin, "dep-id-4", "repo-a")
    assert app.handler(state_after_upload("fixed", bundle="repo-a"), lambda_context)["bundle"] == "repo-a"


def test_per_repo_cli_arguments_name_the_bundle_without_a_base_dir(per_repo_env, fake_cli, lambda_context):
    seed_deployment(per_repo_env)
    fake_cli.install(
        "if args[:3] == ['deployment', 'bundle', 'list']:\n"
        "    print('Using an Astro API Token')\n"
        "    print(json.dumps({'bundles': [{'name': 'main'}, {'name': 'repo-a', 'currentVersion': None}]}))\n"
        "else:\n"
        f"    {SUCCESS}\n"
    )

    app.handler(state_after_upload(bundle="repo-a"), lambda_context)

    listing, deploy = fake_cli.calls
    assert listing["argv"] == ["deployment", "bundle", "list", "--deployment-id", "dep-id-1", "--json"]
    assert deploy["argv"][-3:] == ["--dag-bundle-name", "repo-a", "--no-dags-base-dir"]
    assert deploy["files"] == {"etl.py": "from airflow import DAG\n", "sql/q.sql": "select 1"}


def test_per_repo_refuses_a_repo_without_python_files_naming_its_bundle(per_repo_env, standin, lambda_context):
    put(per_repo_env, {"dags/ws/dep/repo-a/sql/q.sql": b"select 1"})

    with pytest.raises(EmptyBundleRefused, match=r"dags/ws/dep/repo-a/ holds 1 file but no \.py file: deploying it "
                                                 r"would remove every DAG of Dag bundle repo-a"):
        app.handler(state_after_upload(bundle="repo-a"), lambda_context)


def test_standin_serves_bundle_create_and_list_and_refuses_unknown_bundles(tmp_path, project):
    state = tmp_path / "state"
    wrapper = write_standin_wrapper(tmp_path / "bin", state)
    deploy = ("deploy", "dep-1", "--dags", "--dags-path", "dags", "-f", "--dag-bundle-name", "team-a",
              "--no-dags-base-dir")

    unknown = run_standin(wrapper, project, *deploy)
    assert unknown.returncode == 1 and "no Dag bundle named team-a" in unknown.stderr

    for name in ("main", "Team", "x" * 33):
        refused = run_standin(wrapper, project, "deployment", "bundle", "create", "--deployment-id", "dep-1",
                              "--name", name)
        assert refused.returncode == 1 and "invalid Dag bundle name" in refused.stderr
    created = run_standin(wrapper, project, "deployment", "bundle", "create", "--deployment-id", "dep-1",
                          "--name", "team-a")
    assert created.returncode == 0, created.stderr
    again = run_standin(wrapper, project, "deployment", "bundle", "create", "--deployment-id", "dep-1",
                        "--name", "team-a")
    assert again.returncode == 1 and "already exists" in again.stderr

    assert run_standin(wrapper, project, *deploy).returncode == 0
    listed = json.loads(run_standin(wrapper, project, "deployment", "bundle", "list", "--deployment-id", "dep-1",
                                    "--json").stdout)
    assert [entry["name"] for entry in listed] == ["main", "team-a"] and listed[1]["currentVersion"]
    assert last_bundle(state, "dep-1", "team-a") == ["repo-a/etl.py"] and last_bundle(state, "dep-1") == []
    image = run_standin(wrapper, project, "deploy", "dep-1", "--image", "--dag-bundle-name", "team-a")
    assert image.returncode == 1 and "--dag-bundle-name cannot be used with --image" in image.stderr
