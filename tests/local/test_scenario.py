"""Scenarios: a local DAG folder becomes a request in the original contract; bad scenario files are refused."""

import json

import boto3
import pytest
from moto import mock_aws

from local_mode.project import EXAMPLES_DIR
from local_mode.scenario import Scenario, ScenarioError, upload_dags_dir
from local_mode.requests import folder_files

BUCKET = "local-artifacts"


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _repo(tmp_path, files: dict[str, str]):
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    document = {"requests": [{"astroWorkspace": "ws", "astroDeployment": "dep", "repo": "repo-a", "dags_dir": "."}]}
    return Scenario.from_document(document, tmp_path).requests[0]


def test_a_dags_dir_becomes_dags_and_dependencies_keeping_relative_paths(tmp_path, s3):
    request = _repo(
        tmp_path,
        {
            "etl.py": "from airflow import DAG\nwith DAG(dag_id='etl_daily'):\n    pass\n",
            "reports/weekly.py": "from airflow.decorators import dag\n@dag(schedule=None)\ndef weekly(): ...\nweekly()\n",
            "computed.py": "from airflow import DAG\nDAG(dag_id=f'{__name__}_x')\n",
            "include/helpers.py": "def helper(): return 1\n",
            "sql/query.sql": "select 1;\n",
            ".airflowignore": "include/\n",
            "broken.py": "def (:\n",
            "__pycache__/etl.cpython-311.pyc": "bytecode",
            "include/stale.pyc": "bytecode",
        },
    )
    built = upload_dags_dir(s3, BUCKET, request, "run-1")

    uri = f"s3://{BUCKET}/repo-a/run-1/"
    assert {key: built[key] for key in ("astroWorkspace", "astroDeployment", "repo")} == {
        "astroWorkspace": "ws", "astroDeployment": "dep", "repo": "repo-a",
    }
    assert sorted(built["body"]["dags"], key=lambda dag: dag["path"]) == [
        {"dag_id": "computed", "dag_file": uri + "computed.py", "path": "computed.py"},
        {"dag_id": "etl_daily", "dag_file": uri + "etl.py", "path": "etl.py"},
        {"dag_id": "weekly", "dag_file": uri + "reports/weekly.py", "path": "reports/weekly.py"},
    ]
    # A file that does not compile goes as a plain file: Parse compiles it and reports it by name.
    assert sorted(dependency["path"] for dependency in built["body"]["dependencies"]) == [
        ".airflowignore", "broken.py", "include/helpers.py", "sql/query.sql",
    ]
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix="repo-a/run-1/")["Contents"]
    assert len(stored) == 7
    body = s3.get_object(Bucket=BUCKET, Key="repo-a/run-1/sql/query.sql")["Body"].read()
    assert body == b"select 1;\n"


def test_the_examples_are_two_repos_of_one_main_bundle_with_helpers_and_sql_one_per_repo_one_refused():
    scenario = Scenario.load(EXAMPLES_DIR / "scenario.json")
    shared = [request for request in scenario.requests if request.deployment == "production"
              and request.expect == "SUCCEEDED"]
    assert {request.workspace for request in scenario.requests} == {"analytics"}
    assert len({request.repo for request in shared}) == 2
    # Beside them, a push Parse refuses: Airflow would fail to import it and it reuses another repo's dag_id.
    assert [request.repo for request in scenario.requests if request.expect == "FAILED"] == ["web_analytics"]
    modes = {key: entry.get("dagBundles", "main") for key, entry in scenario.context["astroDeployments"].items()}
    assert modes == {"*/production": "main", "*/ml": "per-repo"}
    assert [request.repo for request in scenario.requests if request.deployment == "ml"] == ["customer_churn"]
    for request in shared:
        files = folder_files(request.dags_dir)
        assert any(path.endswith(".sql") for path in files)
        assert any("/" in path and path.endswith(".py") for path in files), "a helper module in a subfolder"


@pytest.mark.parametrize(
    "document, message",
    [
        ({"requests": []}, "non-empty"),
        ({"requests": [{"repo": "r"}]}, "exactly one of"),
        ({"requests": [{"event": {}, "dags_dir": "."}]}, "exactly one of"),
        ({"requests": [{"event": {}, "expect": "PASSED"}]}, "expect must be one of"),
        ({"requests": [{"dags_dir": "."}]}, "needs astroWorkspace, astroDeployment, repo"),
        ({"requests": [{"astroWorkspace": "w", "astroDeployment": "d", "repo": "r", "dags_dir": "missing"}]},
         "is not a folder"),
        ({"concurrent": "yes", "requests": [{"event": {}}]}, "concurrent"),
    ],
)
def test_a_scenario_that_cannot_run_is_refused_with_the_reason(tmp_path, document, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_document(document, tmp_path)


def test_an_unreadable_scenario_file_is_a_scenario_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        Scenario.load(tmp_path / "bad.json")
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "absent.json")


def test_an_event_request_takes_its_names_from_the_event(tmp_path):
    event = {"astroWorkspace": "ws", "astroDeployment": "dep", "repo": "r", "body": {}}
    request = Scenario.from_document({"requests": [{"event": event, "expect": "FAILED"}]}, tmp_path).requests[0]
    assert (request.workspace, request.deployment, request.repo, request.event) == ("ws", "dep", "r", event)
    assert json.dumps(request.event) == json.dumps(event)


def test_a_scenario_carries_cdk_context_for_its_run(tmp_path):
    context = {"astroDeployments": {"*/*": {"deploymentId": "local-{deployment}", "dagBundles": "per-repo"}}}
    document = {"context": context, "requests": [{"event": {}}]}
    assert Scenario.from_document(document, tmp_path).context == context
    assert Scenario.from_document({"requests": [{"event": {}}]}, tmp_path).context == {}
    with pytest.raises(ScenarioError, match='"context" must be an object'):
        Scenario.from_document({**document, "context": ["astroDeployments"]}, tmp_path)
