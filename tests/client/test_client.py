"""The client's commands: what they send, what they print, and their exit codes for every answer the API gives."""

import json
import re

import pytest
from testkit import SOURCE_BUCKET

from astro_dag_deploy.client import new_states
from functions.shared.aws import client

NAME = "repo-a-0123abcd-6f1c"
STARTED = {"name": NAME, "executionArn": f"arn:aws:states:eu-west-1:123456789012:execution:AstroDagDeploy:{NAME}",
           "statusUrl": f"https://api/prod/deployments/{NAME}"}
TARGET = ("--workspace", "ws", "--deployment", "dep", "--repo", "repo-a")
SUBMIT = ("submit", *TARGET, "--dag", "etl=s3://ci-artifacts/repo-a/etl.py")
FAST = ("--poll-interval", "0.01")
DAG_FILE = 'from airflow import DAG\n\nwith DAG(dag_id="etl_daily", schedule=None):\n    pass\n'


def status(state: str, states: list[str], status: str = "RUNNING", **extra) -> tuple[int, dict]:
    return 200, {"name": NAME, "status": status, "state": state, "error": None, "cause": None,
                 "startDate": "2025-01-02T03:04:05+00:00", "stopDate": None, "version": None,
                 "consoleUrl": "https://console", "states": states, **extra}


def finished(status_name: str, state: str, states: list[str], **extra) -> tuple[int, dict]:
    return status(state, states, status_name, stopDate="2025-01-02T03:04:17.500000+00:00", **extra)


def test_submit_wait_prints_each_state_once_as_it_is_entered_and_exits_0(api, cli, capsys):
    api.answer("POST", (202, STARTED))
    api.answer(
        "GET",
        (404, {"message": f"no execution is named {NAME}"}),  # Step Functions describes new executions eventually
        status("Parse", ["Parse"]),
        status("ClearPrefix", ["Parse", "ClearPrefix"]),
        (503, {"message": "Service Unavailable"}),
        finished("SUCCEEDED", "Deployed", ["Parse", "ClearPrefix", "Upload", "Deploy", "Deployed"], version="v42"),
    )

    assert cli(*SUBMIT, "--api-url", api.url, "--wait", *FAST) == 0

    out, err = capsys.readouterr()
    assert re.findall(r"^ +[\d.]+ s  (\S+)$", err, re.MULTILINE) == ["Parse", "ClearPrefix", "Upload", "Deploy",
                                                                     "Deployed"]
    assert f"Execution: {NAME}" in out
    assert f"#/v2/executions/details/{STARTED['executionArn']}" in out
    assert f"{NAME} SUCCEEDED in 12.5 s: deployed DAG bundle version v42" in out


@pytest.mark.parametrize("final", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_an_execution_that_did_not_succeed_exits_1_with_the_state_error_and_cause(api, cli, capsys, final):
    api.answer("POST", (202, STARTED))
    api.answer("GET", finished(final, "Upload", ["Parse", "ClearPrefix", "Upload", "Upload failed", "Notify", "Failed"],
                               error="UploadFailed", cause="2 of 5 files could not be copied\x1b[31m"))

    assert cli(*SUBMIT, "--api-url", api.url, "--wait", *FAST) == 1

    out = capsys.readouterr().out
    assert f"{NAME} {final} in 12.5 s at Upload\n  Error: UploadFailed\n" in out
    # Text from the server reaches a terminal without its control characters.
    assert "  Cause: 2 of 5 files could not be copied?[31m" in out


def test_status_exits_0_1_or_3_for_succeeded_failed_or_running(api, cli, capsys):
    api.answer("GET", finished("SUCCEEDED", "Deployed", ["Parse", "Deployed"], version="v1"),
               finished("FAILED", "Parse", ["Parse", "Parse failed", "Notify", "Failed"], error="InvalidRequest",
                        cause="1 problem in the request: etl.py: does not compile"),
               status("Deploy", ["Parse", "Deploy"]))

    codes = [cli("status", NAME, "--api-url", api.url) for _ in range(3)]

    assert codes == [0, 1, 3]
    out = capsys.readouterr().out
    assert "Parse > Deployed" in out and "FAILED in 12.5 s at Parse" in out and f"{NAME} RUNNING (in Deploy)" in out


def test_wait_gives_up_after_the_timeout_with_exit_3(api, cli, capsys):
    api.answer("POST", (202, STARTED))
    api.answer("GET", *[status("WaitForLock", ["Parse", "AcquireLock", "WaitForLock"])] * 100)

    assert cli(*SUBMIT, "--api-url", api.url, "--wait", "--timeout", "0.05", *FAST) == 3

    assert f"{NAME} is still RUNNING after 0.05 s (in WaitForLock)" in capsys.readouterr().out


def test_wait_polls_once_per_poll_interval(api, cli):
    api.answer("POST", (202, STARTED))
    api.answer("GET", *[status("WaitForLock", ["Parse", "AcquireLock", "WaitForLock"])] * 100)

    assert cli(*SUBMIT, "--api-url", api.url, "--wait", "--timeout", "0.5", "--poll-interval", "0.2") == 3

    # At 0, 0.2, 0.4 and 0.6 s (past the timeout), or one fewer on a busy machine: not as fast as the API answers.
    assert len([request for request in api.requests if request.method == "GET"]) in (3, 4)


@pytest.mark.parametrize(("answer", "expected"), [
    ((403, {"message": "The security token included in the request is invalid."}),
     "HTTP 403: The security token included in the request is invalid.). Check that the AWS credentials"),
    ((400, {"message": "Invalid request body", "validationErrors": "[object has missing required properties]"}),
     "failed with HTTP 400: Invalid request body [object has missing required properties]"),
    ((409, {"error": "ExecutionAlreadyExists", "message": "Execution Already Exists"}),
     "failed with HTTP 409: Execution Already Exists"),
])
def test_a_refused_request_exits_2_with_the_apis_message(api, cli, capsys, answer, expected):
    api.answer("POST", answer)

    assert cli(*SUBMIT, "--api-url", api.url) == 2

    err = capsys.readouterr().err
    assert err.startswith("astro-dag-deploy submit: error: ") and expected in err


def test_an_unreachable_api_exits_2(api, cli, capsys):
    assert cli("status", NAME, "--api-url", "http://127.0.0.1:1/prod") == 2

    assert "cannot reach http://127.0.0.1:1/prod/deployments/" in capsys.readouterr().err


def test_without_credentials_it_exits_2_before_sending_anything(api, cli, capsys, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    assert cli(*SUBMIT, "--api-url", api.url) == 2

    assert "no AWS credentials found" in capsys.readouterr().err and api.requests == []


@pytest.mark.parametrize(("arguments", "expected"), [
    (("--dag", "etl.py"), "--dag 'etl.py': expected DAG_ID=s3://bucket/key.py"),
    (("--dag", "etl=s3://b/etl.py", "--commit", "not-a-sha"), "--commit 'not-a-sha': not a commit SHA"),
    (("--dag", "etl=s3://b/etl.py", "--repo", "../escape"), "--repo '../escape': use 1-64 characters"),
])
def test_bad_arguments_exit_2(api, cli, capsys, arguments, expected):
    assert cli("submit", "--workspace", "ws", "--deployment", "dep", "--repo", "repo-a", *arguments,
               "--api-url", api.url) == 2

    assert expected in capsys.readouterr().err and api.requests == []


def test_a_request_file_is_sent_with_the_command_lines_names(api, cli, tmp_path):
    request = {"astroWorkspace": "ws", "astroDeployment": "dep", "repo": "old-name",
               "body": {"dags": [{"dag_id": "etl", "dag_file": "s3://ci-artifacts/etl.py"}]}}
    (tmp_path / "request.json").write_text(json.dumps(request))
    api.answer("POST", (202, STARTED))

    assert cli("submit", "--request", tmp_path / "request.json", "--repo", "repo-a", "--api-url", api.url) == 0

    assert json.loads(api.requests[0].body) == {**request, "repo": "repo-a"}


def test_new_states_follow_a_history_that_lost_its_oldest_states():
    assert new_states([], ["Parse"]) == ["Parse"]
    assert new_states(["Parse"], ["Parse", "AcquireLock", "WaitForLock"]) == ["AcquireLock", "WaitForLock"]
    looping = ["AcquireLock", "WaitForLock", "AcquireLock", "WaitForLock"]
    assert new_states(looping, [*looping, "AcquireLock"]) == ["AcquireLock"]
    assert new_states(["Parse", "AcquireLock", "WaitForLock"], ["WaitForLock", "AcquireLock", "Snapshot"]) == [
        "AcquireLock", "Snapshot"]
    assert new_states(["Parse"], ["Parse"]) == []


@pytest.fixture
def dags_folder(tmp_path):
    folder = tmp_path / "dags"
    (folder / "include").mkdir(parents=True)
    (folder / "etl.py").write_text(DAG_FILE)
    (folder / "reports.py").write_text("from airflow.decorators import dag\n\n@dag(schedule=None)\ndef reports():\n"
                                       "    pass\n\nreports()\n")
    (folder / "computed.py").write_text("from airflow import DAG\n\nDAG(dag_id=f'computed_{1}')\n")
    (folder / "include" / "helpers.py").write_text("def helper():\n    return 1\n")
    (folder / "include" / "query.sql").write_text("select 1\n")
    (folder / "broken.py").write_text("from airflow import DAG\n\nwith DAG('broken' :\n    pass\n")
    for junk in ("__pycache__/etl.cpython-311.pyc", ".git/HEAD", "include/helpers.pyc"):
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_bytes(b"junk")
    return folder


def test_push_uploads_the_folder_per_commit_and_sends_its_prefix_for_parse_to_read(buckets, api, cli, capsys,
                                                                                   dags_folder):
    api.answer("POST", (202, STARTED))

    assert cli("push", dags_folder, "--artifacts", f"s3://{SOURCE_BUCKET}/ci/", *TARGET, "--commit", "0123abcd",
               "--api-url", api.url) == 0

    base = f"s3://{SOURCE_BUCKET}/ci/repo-a/0123abcd"
    paths = ["broken.py", "computed.py", "etl.py", "include/helpers.py", "include/query.sql", "reports.py"]
    keys = [item["Key"] for item in client("s3").list_objects_v2(Bucket=SOURCE_BUCKET)["Contents"]]
    assert keys == [f"ci/repo-a/0123abcd/{path}" for path in paths]
    uploaded_dag = client("s3").get_object(Bucket=SOURCE_BUCKET, Key="ci/repo-a/0123abcd/etl.py")["Body"].read()
    assert uploaded_dag == DAG_FILE.encode()
    # The original event's shape; Parse lists the prefix and tells DAG files from the others (and broken ones).
    assert json.loads(api.requests[0].body) == {
        "astroWorkspace": "ws", "astroDeployment": "dep", "repo": "repo-a", "commit": "0123abcd",
        "body": {"source_prefix": f"{base}/"},
    }
    out, err = capsys.readouterr()
    assert f"Uploaded 6 files to {base}/ (Parse finds the DAG files among them)" in out and err == ""


def test_push_without_a_commit_uploads_under_a_new_timestamped_key(buckets, api, cli, dags_folder):
    api.answer("POST", (202, STARTED), (202, STARTED))

    for _ in range(2):
        assert cli("push", dags_folder, "--artifacts", f"s3://{SOURCE_BUCKET}", *TARGET, "--api-url", api.url) == 0

    runs = {json.loads(request.body)["body"]["source_prefix"].split("/")[4] for request in api.requests}
    assert len(runs) == 2 and all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", run) for run in runs)
    assert all("commit" not in json.loads(request.body) for request in api.requests)


def test_push_to_a_missing_bucket_exits_2_before_starting_anything(aws, api, cli, capsys, dags_folder):
    assert cli("push", dags_folder, "--artifacts", "s3://no-such-bucket/ci", *TARGET, "--api-url", api.url) == 2

    assert "cannot upload to s3://no-such-bucket/ci/repo-a/" in capsys.readouterr().err and api.requests == []


def test_push_of_an_empty_folder_exits_2_before_uploading_or_starting_anything(buckets, api, cli, capsys, tmp_path):
    (tmp_path / "dags" / "__pycache__").mkdir(parents=True)
    (tmp_path / "dags" / "__pycache__" / "etl.cpython-311.pyc").write_bytes(b"junk")

    assert cli("push", tmp_path / "dags", "--artifacts", f"s3://{SOURCE_BUCKET}", *TARGET, "--api-url", api.url) == 2

    assert "holds no files to deploy" in capsys.readouterr().err and api.requests == []
    assert "Contents" not in client("s3").list_objects_v2(Bucket=SOURCE_BUCKET)


def github_outputs(path) -> list[tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in path.read_text().splitlines()]


def test_push_wait_appends_the_executions_name_status_and_bundle_version_as_github_outputs(
        buckets, api, cli, dags_folder, tmp_path):
    output = tmp_path / "github_output"
    output.write_text("earlier=kept\n")
    api.answer("POST", (202, STARTED))
    api.answer("GET", finished("SUCCEEDED", "Deployed", ["Parse", "Deployed"], version="2024-05-01T10:20:30Z\nx=y",
                               bundle="main"))

    assert cli("push", dags_folder, "--artifacts", f"s3://{SOURCE_BUCKET}/ci", *TARGET, "--api-url", api.url,
               "--wait", *FAST, "--github-output", output) == 0

    # One line per output whatever the server answers: a line break cannot add an output.
    assert github_outputs(output) == [("earlier", "kept"), ("execution-name", NAME), ("status", "SUCCEEDED"),
                                      ("dag-bundle", "main"), ("dag-bundle-version", "2024-05-01T10:20:30Z?x=y")]


@pytest.mark.parametrize(("wait", "answers", "expected_status", "code"), [
    ((), [], "RUNNING", 0),
    (("--wait",), [finished("FAILED", "Parse", ["Parse", "Notify", "Failed"], error="InvalidRequest")], "FAILED", 1),
    (("--wait", "--timeout", "0.05"), [status("WaitForLock", ["Parse", "WaitForLock"])] * 100, "RUNNING", 3),
])
def test_submit_reports_how_it_left_the_execution_as_github_outputs(api, cli, tmp_path, wait, answers,
                                                                    expected_status, code):
    api.answer("POST", (202, STARTED))
    api.answer("GET", *answers)

    assert cli(*SUBMIT, "--api-url", api.url, *wait, *FAST, "--github-output", tmp_path / "out") == code

    assert github_outputs(tmp_path / "out") == [("execution-name", NAME), ("status", expected_status),
                                                ("dag-bundle", ""), ("dag-bundle-version", "")]


def test_status_reports_github_outputs_and_an_unwritable_output_file_exits_2(api, cli, capsys, tmp_path):
    api.answer("GET", finished("SUCCEEDED", "Deployed", ["Parse", "Deployed"], version="v7", bundle="team-a"))

    assert cli("status", NAME, "--api-url", api.url, "--github-output", tmp_path / "out") == 0
    assert cli("status", NAME, "--api-url", api.url, "--github-output", tmp_path / "missing" / "out") == 2

    assert github_outputs(tmp_path / "out") == [("execution-name", NAME), ("status", "SUCCEEDED"),
                                                ("dag-bundle", "team-a"), ("dag-bundle-version", "v7")]
    captured = capsys.readouterr()
    assert "--github-output " in captured.err and len(api.requests) == 1
    assert "deployed DAG bundle version v7 (Dag bundle team-a)" in captured.out


def test_an_execution_another_ship_carried_says_the_version_and_whose_ship_it_was(api, cli, capsys, tmp_path):
    api.answer("GET", finished("SUCCEEDED", "Deployed by another ship", ["Parse", "DeferShip", "Deployed by another ship"],
                               version="v8", bundle="main", shippedBy="team-h-20260101T000000-9"))

    assert cli("status", NAME, "--api-url", api.url, "--github-output", tmp_path / "out") == 0

    assert ("dag-bundle-version", "v8") in github_outputs(tmp_path / "out")
    assert (f"{NAME} SUCCEEDED in 12.5 s: deployed DAG bundle version v8 (Dag bundle main), carried by the ship of "
            "execution team-h-20260101T000000-9") in capsys.readouterr().out


REPORT = {"passed": False, "problems": ["etl.py: does not compile: invalid syntax (line 3)"], "error": "InvalidRequest",
          "cause": "1 problem in the request: etl.py: does not compile", "comparison": None, "warnings": []}
COMPARISON = {"unchanged": False, "reason": "1 files added, 0 changed, 0 removed since execution e-1 (commit abcd)",
              "liveCommit": "abcd", "liveExecution": "e-1",
              "diff": {"added": 1, "changed": 0, "removed": 0, "unchanged": 3, "filesAdded": ["new.py"],
                       "filesChanged": [], "filesRemoved": [], "dagIdsAdded": ["new"], "dagIdsRemoved": []}}


def test_submit_dry_run_sends_dry_run_and_exits_0_without_problems_1_with_them(api, cli, capsys):
    api.answer("POST", (202, STARTED), (202, STARTED))
    api.answer("GET", finished("SUCCEEDED", "Dry run passed", ["Parse", "Dry run?", "DryRun", "Dry run passed"],
                               dryRun={**REPORT, "passed": True, "problems": [], "error": None, "cause": None,
                                       "comparison": COMPARISON}),
               finished("FAILED", "Dry run found problems", ["Parse", "Dry run?", "DryRun", "Dry run found problems"],
                        error="InvalidRequest", cause=REPORT["cause"], dryRun=REPORT))

    assert cli(*SUBMIT, "--api-url", api.url, "--wait", "--dry-run", *FAST) == 0
    passed = capsys.readouterr().out
    assert cli(*SUBMIT, "--api-url", api.url, "--wait", "--dry-run", "--force", *FAST) == 1
    failed = capsys.readouterr().out

    sent = [json.loads(request.body) for request in api.requests if request.method == "POST"]
    assert [(request.get("dry_run"), request.get("force")) for request in sent] == [(True, None), (True, True)]
    assert f"{NAME} SUCCEEDED in 12.5 s: dry run, nothing changed, no problems" in passed
    assert "  Live:    abcd; 1 files added, 0 changed, 0 removed since execution e-1 (commit abcd)\n" in passed
    assert "  Files added:   1  new.py\n  Files changed: 0  none\n" in passed and "  DAGs added:   new\n" in passed
    assert f"{NAME} FAILED in 12.5 s: dry run, nothing changed, 1 problems" in failed
    assert "  Problem: etl.py: does not compile: invalid syntax (line 3)\n" in failed


def test_an_unchanged_request_says_nothing_was_shipped(api, cli, capsys):
    api.answer("GET", finished("SUCCEEDED", "Unchanged", ["Parse", "Unchanged?", "Unchanged"], unchanged=True,
                               live={**COMPARISON, "unchanged": True, "reason": "the files are those e-1 deployed"}))

    assert cli("status", NAME, "--api-url", api.url) == 0

    out = capsys.readouterr().out
    assert f"{NAME} SUCCEEDED in 12.5 s: unchanged, nothing shipped (send force to ship anyway)" in out
    assert "the files are those e-1 deployed" in out


def test_targets_prints_each_repo_its_dags_and_the_bundles_last_ship(api, cli, capsys):
    api.answer("GET", (200, {
        "workspace": "ws", "deployment": "dep", "deploymentId": "clx1",
        "repos": [{"repo": "repo-a", "commit": "abcd", "execution": "e-1", "deployedAt": "2025-01-02T03:04:05+00:00",
                   "bundle": "main", "bundleVersion": "v1", "files": 3, "inLastShip": False,
                   "dags": [{"dagId": "etl", "path": "etl.py"}]}],
        "bundles": [{"bundle": "main", "state": "shipping", "execution": "e-2", "repo": "repo-b", "commit": None,
                     "startedAt": "2025-01-02T04:00:00+00:00", "finishedAt": None, "version": None,
                     "repos": ["repo-a", "repo-b"]}],
    }))

    assert cli("targets", "ws", "dep", "--api-url", api.url) == 0

    assert api.requests[0].path == "/prod/targets/ws/dep"
    assert capsys.readouterr().out == (
        "ws/dep (Astro deployment clx1)\n"
        "  repo-a: commit abcd, deployed 2025-01-02T03:04:05+00:00 by e-1, Dag bundle main version v1, 3 files"
        "  [not confirmed by the Dag bundle's last ship]\n"
        "      etl  (etl.py)\n"
        "  Dag bundle main: last ship by e-2 (repo repo-b), NOT CONFIRMED by Astro (it may hold that ship or the one "
        "before); repos: repo-a, repo-b\n"
    )


def test_targets_refuses_names_the_api_would_and_says_where_nothing_was_deployed(api, cli, capsys):
    assert cli("targets", "ws", "../dep", "--api-url", api.url) == 2
    assert "DEPLOYMENT '../dep': use 1-64 characters" in capsys.readouterr().err
    api.answer("GET", (404, {"message": "nothing has been deployed to ws/dep by astro-dag-deploy"}))
    assert cli("targets", "ws", "dep", "--api-url", api.url) == 2
    assert "nothing has been deployed to ws/dep" in capsys.readouterr().err
