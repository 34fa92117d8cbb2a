"""`serve` end to end: the local mode behind the HTTP API, driven by the client's own commands over HTTP, with the
files uploaded through the printed S3-compatible endpoint."""

import json
import re
import shutil
import urllib.error
import urllib.request

import boto3
import pytest

from astro_dag_deploy.client import signed_headers
from astro_dag_deploy.folder import folder_files
from local_mode.astro_standin import last_bundle
from local_mode.project import EXAMPLES_DIR

REPOS = ("marketing_etl", "finance_reports")
TARGET = ("--workspace", "analytics", "--deployment", "production")
DEPLOYMENT_ID = "local-production"  # what the local mode maps analytics/production to
ARTIFACTS = "s3://local-artifacts/ci"


def execution_name(out: str) -> str:
    return re.search(r"^Execution: (\S+)$", out, re.MULTILINE)[1]


def test_push_wait_deploys_both_example_repos_and_status_reports_them(ci_job, cli, capsys):
    names = []
    for repo in REPOS:
        # Forced: the session's serve may hold these files already (another test pushed them), a ship is wanted.
        code = cli("push", EXAMPLES_DIR / repo, "--artifacts", ARTIFACTS, "--api-url", ci_job.api_url, *TARGET,
                   "--repo", repo, "--commit", "0123456789abcdef", "--wait", "--poll-interval", "0.1", "--force")
        out, err = capsys.readouterr()
        assert code == 0, out + err
        names.append(execution_name(out))
        progress = re.findall(r"^ +[\d.]+ s  (\S+)$", err, re.MULTILINE)
        assert progress[0] == "Parse" and "Deploy" in progress
        assert f"{names[-1]} SUCCEEDED" in out and "deployed DAG bundle version" in out

    assert [name.rsplit("-", 1)[0] for name in names] == [f"{repo}-01234567" for repo in REPOS]
    for name in names:
        assert cli("status", name, "--api-url", ci_job.api_url) == 0
        assert f"{name} SUCCEEDED" in capsys.readouterr().out
    # The uploads went through the printed endpoint into the world's S3: the last bundle holds both repos.
    assert last_bundle(ci_job.out_dir / "astro", DEPLOYMENT_ID) == sorted(
        f"{repo}/{path}" for repo in REPOS for path in folder_files(EXAMPLES_DIR / repo))
    uploaded = boto3.client("s3").list_objects_v2(Bucket="local-artifacts", Prefix="ci/marketing_etl/0123456789abcdef/")
    assert len(uploaded["Contents"]) == len(folder_files(EXAMPLES_DIR / "marketing_etl"))


def test_a_push_with_a_broken_dag_fails_at_parse_naming_the_file(ci_job, cli, capsys, tmp_path):
    folder = shutil.copytree(EXAMPLES_DIR / "finance_reports", tmp_path / "finance_reports")
    (folder / "broken_dag.py").write_text("from airflow import DAG\n\nwith DAG('broken' :\n    pass\n")

    code = cli("push", folder, "--artifacts", ARTIFACTS, "--api-url", ci_job.api_url, *TARGET,
               "--repo", "finance_reports", "--wait", "--poll-interval", "0.1")

    out, err = capsys.readouterr()
    assert code == 1, out + err
    name = execution_name(out)
    assert f"{name} FAILED" in out and " at Parse\n  Error: InvalidRequest\n" in out
    assert "Cause: 1 problem in the request (full report: s3://" in out
    assert ".report.json): broken_dag.py: does not compile" in out
    assert cli("status", name, "--api-url", ci_job.api_url) == 1
    status = capsys.readouterr().out
    assert f"{name} FAILED" in status and "at Parse" in status and "broken_dag.py" in status


def test_the_api_refuses_unsigned_requests_and_invalid_bodies_as_api_gateway_does(ci_job, cli, capsys):
    url = f"{ci_job.api_url}/deployments"
    body = json.dumps({"astroWorkspace": "analytics", "astroDeployment": "production", "repo": "r",
                       "body": {"dags": [{"dag_id": "etl", "dag_file": "http://not-s3/etl.py"}]}}).encode()
    credentials = boto3.Session().get_credentials().get_frozen_credentials()

    unsigned = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    signed = urllib.request.Request(url, data=body, headers=signed_headers("POST", url, body, credentials, "us-east-1"),
                                    method="POST")
    answers = []
    for request in (unsigned, signed):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        answers.append((refused.value.code, json.loads(refused.value.read())))

    assert answers[0] == (403, {"message": "Missing Authentication Token"})
    assert answers[1][0] == 400 and answers[1][1]["message"] == "Invalid request body"
    assert "body.dags.0.dag_file: 'http://not-s3/etl.py' does not match" in answers[1][1]["validationErrors"]

    # Valid, but over Step Functions' 256 KiB input: StartExecution refuses it, the API answers 400.
    dags = [{"dag_id": f"d{number}", "dag_file": f"s3://ci-artifacts/{'k' * 1000}{number}.py"} for number in range(300)]
    oversize = json.dumps({"astroWorkspace": "analytics", "astroDeployment": "production", "repo": "r",
                           "body": {"dags": dags}}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(
            url, data=oversize, headers=signed_headers("POST", url, oversize, credentials, "us-east-1"), method="POST",
        ), timeout=10)
    assert refused.value.code == 400 and json.loads(refused.value.read())["error"] == "ValidationException"
    assert cli("status", "marketing_etl-nothing", "--api-url", ci_job.api_url) == 2
    assert "HTTP 404: no execution is named marketing_etl-nothing" in capsys.readouterr().err


def test_targets_dry_runs_and_unchanged_pushes_through_the_api(ci_job, cli, capsys, tmp_path):
    folder = shutil.copytree(EXAMPLES_DIR / "marketing_etl", tmp_path / "marketing_etl")
    staging = ("--workspace", "analytics", "--deployment", "staging", "--repo", "marketing_etl")
    push = ("push", folder, "--artifacts", ARTIFACTS, "--api-url", ci_job.api_url, *staging, "--wait",
            "--poll-interval", "0.1")
    assert cli(*push, "--commit", "0123456789abcdef") == 0
    capsys.readouterr()

    assert cli("targets", "analytics", "staging", "--api-url", ci_job.api_url) == 0
    out = capsys.readouterr().out
    assert out.startswith("analytics/staging (Astro deployment local-staging)\n")
    assert "  marketing_etl: commit 0123456789abcdef, deployed " in out
    assert "      marketing_campaign_performance  (campaign_performance.py)\n" in out
    assert "Dag bundle main: last ship by marketing_etl-01234567-" in out and "shipped, version" in out
    assert cli("targets", "analytics", "staging", "--api-url", ci_job.api_url, "--json") == 0
    [repo] = json.loads(capsys.readouterr().out)["repos"]
    assert (repo["repo"], repo["commit"], repo["inLastShip"]) == ("marketing_etl", "0123456789abcdef", True)

    # The same files again: nothing ships; --force ships them all the same.
    assert cli(*push, "--commit", "0123456789abcdef") == 0
    out, err = capsys.readouterr()
    assert "SUCCEEDED" in out and "unchanged, nothing shipped" in out and "Deploy" not in err
    assert cli(*push, "--force") == 0
    out, err = capsys.readouterr()
    assert "deployed DAG bundle version" in out and re.search(r"^ +[\d.]+ s  Deploy$", err, re.MULTILINE)

    # A dry run: the diff, nothing changed; a pull request's check fails (exit 1) on problems.
    (folder / "new_report.py").write_text("from airflow import DAG\nDAG(dag_id='new_report')\n")
    assert cli(*push, "--dry-run") == 0
    out = capsys.readouterr().out
    assert ": dry run, nothing changed, no problems" in out
    assert "  Files added:   1  new_report.py\n" in out and "  DAGs added:   new_report\n" in out
    # A file Airflow parses as a DAG file (it names airflow and a DAG) that does not compile.
    (folder / "broken_dag.py").write_text("from airflow import DAG\ndef broken(:\n")
    assert cli(*push, "--dry-run") == 1
    out = capsys.readouterr().out
    assert ": dry run, nothing changed, 1 problems" in out
    assert "  Problem: broken_dag.py: does not compile" in out

    assert cli("targets", "analytics", "nowhere", "--api-url", ci_job.api_url) == 2
    assert "nothing has been deployed to analytics/nowhere" in capsys.readouterr().err
