"""Parse: every problem of a request is found and reported together, before anything changes."""

import hashlib

import pytest

from testkit import DAG_BUCKET, SOURCE_BUCKET, emitted_metrics, store_astro_targets
from functions.parse import app
from functions.parse.planning import MAX_COPY_BYTES, build_plan, size_problems
from functions.shared.dag_bundles import lock_key
from functions.shared.errors import InvalidRequest
from functions.shared.plan_store import PlannedFile, load_parse_report, load_plan

TARGETS = {"*/*": {"deploymentId": "dep-{deployment}"}}
ALLOWED = frozenset({SOURCE_BUCKET})
SOURCE_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DAG_CODE = """
from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG(dag_id="{dag_id}", schedule=None) as dag:
    EmptyOperator(task_id="start")
"""
DECORATED_DAG_CODE = """
from airflow.decorators import dag, task

@dag(schedule="@daily")
def nightly_report():
    @task
    def build():
        return 1
    build()

nightly_report()
"""


def put(s3, key: str, body: str, bucket: str = SOURCE_BUCKET) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return f"s3://{bucket}/{key}"


def request(dags=(), dependencies=(), **body_fields) -> dict:
    return {
        "astroWorkspace": "analytics",
        "astroDeployment": "production",
        "repo": "repo-a",
        "commit": "0123abcd",
        "body": {"dags": list(dags), "dependencies": list(dependencies), **body_fields},
    }


def problems_of(raw: object) -> list[str]:
    with pytest.raises(InvalidRequest) as raised:
        build_plan(raw, "exec-1", ALLOWED, TARGETS)
    return raised.value.problems


def test_plans_dags_and_dependencies_with_their_paths(buckets):
    etl = put(buckets, "build/repo-a/etl.py", DAG_CODE.format(dag_id="etl"))
    helper = put(buckets, "build/repo-a/include/helpers.py", "def helper():\n    return 1\n")
    sql = put(buckets, "build/repo-a/sql/report.sql", "select 1")

    plan, warnings = build_plan(
        request(
            dags=[{"dag_id": "etl", "dag_file": etl, "path": "pipelines/etl.py"}],
            dependencies=[{"source": helper, "path": "include/helpers.py"}, {"source": sql}],
        ),
        "exec-1",
        ALLOWED,
        TARGETS,
    )

    assert warnings == []
    assert plan.prefix == "dags/analytics/production/repo-a/"
    by_path = {entry.path: entry for entry in plan.files}
    assert sorted(by_path) == ["include/helpers.py", "pipelines/etl.py", "report.sql"]
    assert by_path["pipelines/etl.py"].kind == "dag"
    assert by_path["pipelines/etl.py"].dag_ids == ["etl"]
    assert by_path["include/helpers.py"].kind == "dependency"
    assert by_path["report.sql"].size == len("select 1")
    assert all(entry.etag.startswith('"') for entry in plan.files)


def test_the_plan_records_how_each_source_is_encrypted(buckets):
    # Upload needs it: an SSE-KMS source's ETag is no MD5 of its bytes, its copy's is.
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": SOURCE_KEY_ARN}
    buckets.put_object(Bucket=SOURCE_BUCKET, Key="kms/etl.py", Body=DAG_CODE.format(dag_id="etl").encode(), **kms)
    buckets.put_object(Bucket=SOURCE_BUCKET, Key="kms/q.sql", Body=b"select 1", **kms)
    plain = put(buckets, "plain/r.sql", "select 2")
    dags = [{"dag_id": "etl", "dag_file": f"s3://{SOURCE_BUCKET}/kms/etl.py"}]
    dependencies = [{"source": f"s3://{SOURCE_BUCKET}/kms/q.sql"}, {"source": plain}]

    plan, _ = build_plan(request(dags=dags, dependencies=dependencies), "exec-1", ALLOWED, TARGETS)

    encryption = {entry.path: entry.server_side_encryption for entry in plan.files}
    # moto reports no encryption for an object put without it; S3 reports its default, AES256.
    assert encryption == {"etl.py": "aws:kms", "q.sql": "aws:kms", "r.sql": None}


def test_dag_path_defaults_to_the_file_name(buckets):
    source = put(buckets, "deep/folder/nightly.py", DECORATED_DAG_CODE)
    plan, _ = build_plan(request(dags=[{"dag_id": "nightly_report", "dag_file": source}]), "e", ALLOWED, TARGETS)
    assert [(entry.path, entry.dag_ids) for entry in plan.files] == [("nightly.py", ["nightly_report"])]


def test_source_prefix_takes_the_whole_tree_and_finds_the_dags(buckets):
    put(buckets, "build/repo-a/sha1/dags/etl.py", DAG_CODE.format(dag_id="etl"))
    put(buckets, "build/repo-a/sha1/include/helpers.py", "X = 1\n")
    put(buckets, "build/repo-a/sha1/sql/q.sql", "select 1")
    put(buckets, "build/repo-a/sha10/other.py", DAG_CODE.format(dag_id="other"))

    plan, _ = build_plan(
        request(source_prefix=f"s3://{SOURCE_BUCKET}/build/repo-a/sha1"), "exec-1", ALLOWED, TARGETS
    )

    kinds = {entry.path: entry.kind for entry in plan.files}
    assert kinds == {"dags/etl.py": "dag", "include/helpers.py": "dependency", "sql/q.sql": "dependency"}


def test_nulls_mean_the_defaults(buckets):
    raw = request(source_prefix=None)
    raw["commit"] = None
    plan, _ = build_plan(raw, "exec-1", ALLOWED, TARGETS)
    assert plan.files == [] and plan.commit is None


def test_empty_request_means_the_repo_has_no_dags(buckets):
    plan, _ = build_plan(request(), "exec-1", ALLOWED, TARGETS)
    assert plan.files == []


def test_format_problems_are_all_reported_at_once(buckets):
    raw = request(
        dags=[
            {"dag_id": "bad id!", "dag_file": f"s3://{SOURCE_BUCKET}/a.py"},
            {"dag_id": "ok", "dag_file": "s3://not-allowed-bucket/b.py"},
            {"dag_id": "ok2", "dag_file": f"s3://{SOURCE_BUCKET}/c.py", "path": "../escape.py"},
            {"dag_id": "ok3", "dag_file": f"s3://{SOURCE_BUCKET}/d.txt"},
            {"dag_id": 7, "dag_file": f"s3://{SOURCE_BUCKET}/e.py"},
        ],
    )
    raw["astroWorkspace"] = "../other"
    raw["repo"] = "a/b"

    problems = problems_of(raw)

    text = "\n".join(problems)
    for expected in (
        "astroWorkspace",
        "repo",
        "body.dags[0].dag_id",
        "not-allowed-bucket",
        "body.dags[2].path: the path escapes its folder",
        "d.txt' is not a .py file",
        "body.dags[4].dag_id",
    ):
        assert expected in text
    assert len(problems) == 7


@pytest.mark.parametrize(
    "raw",
    [None, [], "text", 3, {}, {"astroWorkspace": "a"}, {**request(), "body": []}, {**request(), "extra": 1}],
)
def test_wrong_shapes_are_invalid_requests(buckets, raw):
    assert problems_of(raw)


def test_two_files_with_one_path_in_the_repo_are_refused(buckets):
    first = put(buckets, "x/etl.py", DAG_CODE.format(dag_id="etl"))
    second = put(buckets, "y/etl.py", DAG_CODE.format(dag_id="etl2"))
    problems = problems_of(
        request(dags=[{"dag_id": "etl", "dag_file": first}, {"dag_id": "etl2", "dag_file": second}])
    )
    assert problems == ["body: several files have the same path in the repo: etl.py"]


def test_source_problems_are_all_reported_before_anything_is_written(buckets):
    missing = f"s3://{SOURCE_BUCKET}/missing.py"
    broken = put(buckets, "broken.py", "def broken(:\n")
    no_dag = put(buckets, "plain.py", "VALUE = 1\n")
    missing_sql = f"s3://{SOURCE_BUCKET}/missing.sql"

    problems = problems_of(
        request(
            dags=[
                {"dag_id": "a", "dag_file": missing},
                {"dag_id": "b", "dag_file": broken},
                {"dag_id": "c", "dag_file": no_dag},
            ],
            dependencies=[{"source": missing_sql}],
        )
    )

    text = "\n".join(problems)
    assert "missing.py: cannot read" in text and "does not exist" in text
    assert "broken.py: does not compile" in text and "line 1" in text
    assert "plain.py: declared as a DAG file but defines no DAG" in text
    assert "missing.sql: cannot read" in text
    assert len(problems) == 4
    assert buckets.list_objects_v2(Bucket=DAG_BUCKET).get("KeyCount") == 0


def room(limit: int) -> str:
    return (f"the {limit} bytes a bundle has in the Deploy function's ephemeral storage (half of what the bundles "
            "kept for the next ships leave: the CLI writes bundle.tar beside the gathered files)")


def test_files_that_could_never_ship_are_refused_with_the_other_problems(buckets):
    """Larger than the room a bundle has in Deploy (here 1,000 bytes), alone or together."""
    dag = put(buckets, "big/etl.py", DAG_CODE.format(dag_id="etl"))
    data = put(buckets, "big/lookup.csv", "x" * 1_200)
    small = put(buckets, "big/codes.csv", "y" * 300)
    missing = f"s3://{SOURCE_BUCKET}/missing.sql"
    raw = request(dags=[{"dag_id": "etl", "dag_file": dag}],
                  dependencies=[{"source": data}, {"source": small}, {"source": missing}])

    with pytest.raises(InvalidRequest) as raised:
        build_plan(raw, "exec-1", ALLOWED, TARGETS, bundle_limit_bytes=1_000)

    problems = raised.value.problems
    own = 1_500 + len(DAG_CODE.format(dag_id="etl"))
    assert "missing.sql: cannot read" in problems[0]
    assert problems[1:] == [
        f"lookup.csv: 1200 bytes, more than {room(1_000)}: it could never ship",
        f"the repo's 3 files come to {own} bytes: {own} bytes, more than {room(1_000)}: the bundle could never ship",
    ]
    # Within the room, the same files plan.
    plan, _ = build_plan(request(dags=[{"dag_id": "etl", "dag_file": dag}], dependencies=[{"source": small}]),
                         "exec-1", ALLOWED, TARGETS, bundle_limit_bytes=1_000 + len(DAG_CODE))
    assert len(plan.files) == 2


def test_the_other_repos_of_the_main_bundle_count_toward_its_room_a_per_repo_bundle_alone(buckets):
    dag = put(buckets, "big/etl.py", DAG_CODE.format(dag_id="etl"))
    own = len(DAG_CODE.format(dag_id="etl"))
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/analytics/production/repo-b/data.csv", Body=b"z" * 700)
    raw = request(dags=[{"dag_id": "etl", "dag_file": dag}])

    with pytest.raises(InvalidRequest) as raised:
        build_plan(raw, "exec-1", ALLOWED, TARGETS, dag_bucket=DAG_BUCKET, bundle_limit_bytes=own + 500)
    assert raised.value.problems == [
        f"the repo's 1 files come to {own} bytes and the other repos of its Dag bundle hold 700: {own + 700} bytes, "
        f"more than {room(own + 500)}: the bundle could never ship"]

    # Its own Dag bundle holds the repo alone.
    per_repo = {"analytics/production": {"deploymentId": "dep-production", "dagBundles": "per-repo"}}
    plan, _ = build_plan(raw, "exec-1", ALLOWED, per_repo, dag_bucket=DAG_BUCKET, bundle_limit_bytes=own + 500)
    assert plan.bundle == "repo-a"


def test_a_file_over_what_one_copy_copies_is_refused_whatever_the_room():
    huge = PlannedFile(source_bucket="b", source_key="k", etag='"e"', size=MAX_COPY_BYTES + 1, path="model.bin",
                       kind="dependency")
    assert size_problems([huge], None) == [
        f"model.bin: {MAX_COPY_BYTES + 1} bytes, more than the {MAX_COPY_BYTES} bytes S3 copies in one CopyObject "
        "(Upload's copy): it could never ship"]
    # A room larger than one copy: the copy is the limit, and the repo fits the room.
    assert size_problems([huge], 8 * 1024**3) == size_problems([huge], None)


def test_errors_python_only_raises_at_compile_time_are_found(buckets):
    source = put(buckets, "bad.py", "from airflow import DAG\nDAG('x')\nreturn 1\n")
    problems = problems_of(request(dags=[{"dag_id": "x", "dag_file": source}]))
    assert "'return' outside function" in problems[0]


def test_a_dag_id_that_is_not_literal_is_a_warning(buckets):
    source = put(buckets, "computed.py", "from airflow import DAG\nname = 'x' + 'y'\nDAG(dag_id=name)\n")
    plan, warnings = build_plan(request(dags=[{"dag_id": "xy", "dag_file": source}]), "e", ALLOWED, TARGETS)
    assert len(plan.files) == 1
    assert warnings and "'xy' is not defined literally" in warnings[0]


def test_an_unconfigured_deployment_is_refused_before_anything_happens(buckets):
    problems = problems_with_astro_targets(request(), {"analytics/staging": {"deploymentId": "d1"}})
    assert "no Astro deployment is configured for workspace 'analytics', deployment 'production'" in problems[0]
    assert "cdk.json" in problems[0]


def problems_with_astro_targets(raw: dict, astro_targets: dict) -> list[str]:
    with pytest.raises(InvalidRequest) as raised:
        build_plan(raw, "exec-1", ALLOWED, astro_targets)
    return raised.value.problems


@pytest.fixture
def parse_env(monkeypatch, buckets):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    monkeypatch.setenv("SOURCE_BUCKETS", f"{SOURCE_BUCKET},another-bucket")
    monkeypatch.setenv("BUNDLE_LIMIT_BYTES", str(2 * 1024**3))
    store_astro_targets(monkeypatch, TARGETS)
    return buckets


def test_handler_stores_the_plan_and_returns_a_small_summary(parse_env, lambda_context, capsys):
    dags = []
    for number in range(30):
        dags.append({"dag_id": f"dag_{number}", "dag_file": put(parse_env, f"b/d{number}.py",
                                                                DAG_CODE.format(dag_id=f"dag_{number}"))})

    summary = app.handler({"request": request(dags=dags), "execution": "exec-42"}, lambda_context)

    assert summary["files"] == 30 and summary["dag_count"] == 30
    assert len(summary["dag_ids"]) == 21 and summary["dag_ids"][-1].startswith("... and 10 more")
    assert summary["plan"] == f"s3://{DAG_BUCKET}/plans/exec-42.json"
    assert summary["prefix"] == "dags/analytics/production/repo-a/"
    # The lock AcquireLock takes and every release frees, known before AcquireLock runs.
    assert summary["lock_key"] == lock_key("analytics", "production", summary["bundle"]) == "analytics/production"
    assert len(load_plan(DAG_BUCKET, "exec-42").files) == 30
    metrics = emitted_metrics(capsys.readouterr().out, repo="repo-a")
    assert metrics["parse.success"] == 1 and metrics["parse.files"] == 30 and metrics["parse.time"] > 0


def test_handler_reports_failure_in_metrics_and_raises_invalid_request(parse_env, lambda_context, capsys):
    raw = request(dags=[{"dag_id": "x", "dag_file": "s3://elsewhere/x.py"}])
    with pytest.raises(InvalidRequest):
        app.handler({"request": raw, "execution": "exec-43"}, lambda_context)
    assert emitted_metrics(capsys.readouterr().out, repo="repo-a")["parse.success"] == 0
    # Nothing written but the report of the refusal.
    keys = [item["Key"] for item in parse_env.list_objects_v2(Bucket=DAG_BUCKET).get("Contents", [])]
    assert keys == ["plans/exec-43.report.json"]


def test_a_refusal_stores_every_problem_in_a_report_and_points_to_it(parse_env, lambda_context):
    dags = [{"dag_id": f"d{number}", "dag_file": f"s3://elsewhere/d{number}.py"} for number in range(37)]
    raw = {**request(dags=dags), "commit": "abcdef12"}
    with pytest.raises(InvalidRequest) as raised:
        app.handler({"request": raw, "execution": "exec-44"}, lambda_context)

    report_uri = f"s3://{DAG_BUCKET}/plans/exec-44.report.json"
    assert str(raised.value).startswith(f"37 problems in the request (full report: {report_uri}): the first 20: ")
    report = load_parse_report(DAG_BUCKET, "exec-44")
    assert len(report.problems) == 37 and report.error == "InvalidRequest"
    assert report.requested == {"astroWorkspace": "analytics", "astroDeployment": "production", "repo": "repo-a",
                                "commit": "abcdef12"}


def prefix_request(files: dict[str, str], s3, repo: str = "repo_a") -> dict:
    for path, body in files.items():
        put(s3, f"build/{repo}/{path}", body)
    return {"astroWorkspace": "analytics", "astroDeployment": "production", "repo": repo,
            "body": {"source_prefix": f"s3://{SOURCE_BUCKET}/build/{repo}/"}}


def test_files_airflow_does_not_parse_are_shipped_but_are_no_dag_files(buckets):
    raw = prefix_request({
        "etl.py": DAG_CODE.format(dag_id="etl"),
        ".airflowignore": "old/\n",
        "old/etl.py": DAG_CODE.format(dag_id="etl") + "from .nowhere import x\n",  # ignored: never parsed
        "old/draft.py": "def draft(:\n",
        "generate.py": "def DAG(dag_id):\n    return dag_id\nDAG('x')\n",  # no 'airflow' in it: safe mode skips it
    }, buckets)

    plan, warnings = build_plan(raw, "exec-1", ALLOWED, TARGETS)

    kinds = {entry.path: (entry.kind, entry.dag_ids) for entry in plan.files}
    assert kinds == {".airflowignore": ("dependency", []), "etl.py": ("dag", ["etl"]),
                     "generate.py": ("dependency", []), "old/draft.py": ("dependency", []),
                     "old/etl.py": ("dependency", [])}
    assert any(warning.startswith("old/draft.py: does not compile") for warning in warnings)


def test_a_dag_file_declared_but_ignored_is_refused(buckets):
    ignore = put(buckets, "b/.airflowignore", "etl*.py\n")
    etl = put(buckets, "b/etl.py", DAG_CODE.format(dag_id="etl"))
    problems = problems_of(request(dags=[{"dag_id": "etl", "dag_file": etl}],
                                   dependencies=[{"source": ignore, "path": ".airflowignore"}]))
    assert problems == ["etl.py: declared as a DAG file, but Airflow will not parse it: ignored by .airflowignore "
                        "('etl*.py')"]


def test_imports_and_dag_ids_are_checked_against_the_live_deployment(buckets):
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/analytics/production/finance/revenue.py",
                       Body=DAG_CODE.format(dag_id="revenue").encode(), Metadata={"commit": "abc123"})
    raw = prefix_request({
        "etl.py": DAG_CODE.format(dag_id="revenue") + "from finance.revenue import dag as _\nimport pandas\n",
        "dynamic.py": "from airflow import DAG\nfor n in range(2):\n    DAG(f'etl_{n}')\n",
    }, buckets)
    targets = {"*/*": {"deploymentId": "d", "installedPackages": ["numpy"]}}

    with pytest.raises(InvalidRequest) as raised:
        build_plan(raw, "exec-1", ALLOWED, targets, DAG_BUCKET)

    assert raised.value.problems == [
        "etl.py line 8: `import pandas`: 'pandas' is neither in the bundle, the standard library nor the deployment's "
        "installedPackages: install its package in the deployment's image and list 'pandas' in installedPackages "
        "(cdk.json)",
        "etl.py: dag_id 'revenue' is already defined by repo 'finance' (commit abc123) in revenue.py: dag_ids are "
        "global in an Airflow deployment, one of the two DAGs would disappear: rename it (or remove it there first)",
    ]
    raw["body"]["source_prefix"] = prefix_request({"dynamic.py": "from airflow import DAG\nfor n in range(2):\n"
                                                                 "    DAG(f'etl_{n}')\n"}, buckets, "repo_b")[
        "body"]["source_prefix"]
    raw["repo"] = "repo_b"
    plan, warnings = build_plan(raw, "exec-2", ALLOWED, targets, DAG_BUCKET)
    assert [entry.kind for entry in plan.files] == ["dag"]
    assert warnings == ["dynamic.py line 3: the dag_id is computed when Airflow parses the file, so it cannot be "
                        "checked against the deployment's other dag_ids: keep it unique"]



def test_a_refused_dry_run_returns_its_problems_instead_of_failing(parse_env, lambda_context, capsys):
    raw = {**request(dags=[{"dag_id": "x", "dag_file": "s3://elsewhere/x.py"}]), "dry_run": True}

    refused = app.handler({"request": raw, "execution": "exec-44"}, lambda_context)

    assert refused["dry_run"] is True and refused["error"] == "InvalidRequest"
    assert refused["cause"].startswith(f"1 problem in the request (full report: s3://{DAG_BUCKET}/plans/exec-44.report.json)")
    assert "body.dags[0].dag_file: bucket 'elsewhere'" in refused["cause"]
    assert len(refused["problems"]) == 1
    # Parse failed all the same (its metric says so) and wrote nothing but the report of the refusal.
    assert emitted_metrics(capsys.readouterr().out, repo="repo-a")["parse.success"] == 0
    keys = [item["Key"] for item in parse_env.list_objects_v2(Bucket=DAG_BUCKET).get("Contents", [])]
    assert keys == ["plans/exec-44.report.json"]


@pytest.mark.parametrize("dry_run", ["true", 1, None])
def test_only_a_json_true_makes_a_dry_run(parse_env, lambda_context, dry_run):
    raw = {**request(dags=[{"dag_id": "x", "dag_file": "s3://elsewhere/x.py"}]), "dry_run": dry_run}
    with pytest.raises(InvalidRequest):
        app.handler({"request": raw, "execution": "exec-45"}, lambda_context)


def test_dry_run_and_force_reach_the_summary_and_python_files_their_md5(parse_env, lambda_context):
    code = DAG_CODE.format(dag_id="etl")
    raw = {**request(dags=[{"dag_id": "etl", "dag_file": put(parse_env, "b/etl.py", code)}]), "dry_run": True,
           "force": True}

    summary = app.handler({"request": raw, "execution": "exec-46"}, lambda_context)

    assert (summary["dry_run"], summary["force"]) == (True, True)
    [planned] = load_plan(DAG_BUCKET, "exec-46").files
    assert planned.checksum == f"md5:{hashlib.md5(code.encode()).hexdigest()}"
