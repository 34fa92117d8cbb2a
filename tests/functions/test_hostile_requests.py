"""Hostile input: whatever JSON arrives, Parse raises InvalidRequest or plans files inside the repo's prefix."""

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from testkit import DAG_BUCKET, SOURCE_BUCKET, store_astro_targets

from jsonschema import Draft4Validator

from functions.parse import app
from functions.parse.planning import build_plan, validate_request
from functions.shared.errors import InvalidRequest
from functions.shared.models import api_json_schema
from functions.shared.paths import repo_prefix

ALLOWED = frozenset({SOURCE_BUCKET})
TARGETS = {"*/*": {"deploymentId": "d"}}
DAG = b"from airflow import DAG\nDAG('d')\n"

ESCAPES = ["..", ".", "", "/", "a/../..", "../x.py", "/etc/passwd", "a//b.py", "a\\..\\b.py", "%2e%2e/x.py",
           "\uff0e\uff0e/x.py", "..\u2215x.py", "x\x00.py", "x\n.py", "\u202e.py", "a" * 600 + ".py", "CON.py",
           " lead.py", "x.py ", "~/.ssh/id.py", "dags/../../other-repo/x.py"]
hostile_text = st.one_of(st.sampled_from(ESCAPES), st.text(max_size=80))


def mostly(valid: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Valid three times in four, so that one hostile field at a time is tried inside a valid request."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda valid_now: valid if valid_now else hostile)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text)
anything = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
segment = mostly(st.sampled_from(["ws", "dep", "repo-a", "a.b_c-1"]), st.one_of(hostile_text, anything))
relative_path = mostly(st.sampled_from(["etl.py", "pipelines/etl.py", "a/b/c.py", ".airflowignore"]),
                       st.one_of(hostile_text, anything))
uri = mostly(
    st.just(f"s3://{SOURCE_BUCKET}/src/etl.py"),
    st.one_of(
        st.builds(lambda key: f"s3://{SOURCE_BUCKET}/{key}", hostile_text),
        st.builds(lambda bucket, key: f"s3://{bucket}/{key}", hostile_text, hostile_text),
        hostile_text,
        anything,
    ),
)
dag_entry = mostly(
    st.fixed_dictionaries({"dag_id": segment, "dag_file": uri, "path": relative_path}),
    st.fixed_dictionaries({"dag_id": anything, "dag_file": uri}, optional={"path": anything, "extra": anything}),
)
dependency_entry = st.fixed_dictionaries({"source": uri}, optional={"path": relative_path})
request_like = st.fixed_dictionaries(
    {
        "astroWorkspace": segment,
        "astroDeployment": segment,
        "repo": segment,
        "body": mostly(
            st.fixed_dictionaries(
                {},
                optional={
                    "dags": mostly(st.lists(dag_entry, max_size=4, unique_by=lambda entry: str(entry.get("path"))),
                                   anything),
                    "dependencies": st.lists(dependency_entry, max_size=2),
                    "source_prefix": mostly(st.just(f"s3://{SOURCE_BUCKET}/src/"), uri),
                    "allow_empty_deployment": mostly(st.booleans(), anything),
                },
            ),
            anything,
        ),
    },
    optional={"commit": mostly(st.just("0123abcd"), st.one_of(hostile_text, anything))},
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(request_like, anything))
def test_the_model_accepts_only_paths_inside_the_prefix(raw):
    try:
        request = validate_request(raw, ALLOWED)
    except InvalidRequest as refused:
        event("refused")
        assert refused.problems and all(isinstance(problem, str) and problem for problem in refused.problems)
        return
    event("accepted")
    prefix = repo_prefix(request.workspace, request.deployment, request.repo)
    for entry in [*request.body.dags, *request.body.dependencies]:
        key = prefix + entry.path_in_repo
        assert key.startswith(prefix) and ".." not in key.split("/") and "//" not in key
        assert all(0x20 <= ord(char) < 0x7F for char in key)


API_SCHEMA = Draft4Validator(api_json_schema())


@settings(max_examples=300, deadline=None)
@given(request_like)
def test_what_the_model_accepts_the_api_accepts(raw):
    """API Gateway validates with the generated schema: it must never refuse a request Parse would take."""
    try:
        validate_request(raw, ALLOWED)
    except InvalidRequest:
        return
    API_SCHEMA.validate(raw)


def _unbounded(node: object, where: str = "request") -> list[str]:
    """Every string without maxLength and every array without maxItems in a JSON schema."""
    if isinstance(node, list):
        return [found for item in node for found in _unbounded(item, where)]
    if not isinstance(node, dict):
        return []
    found = []
    if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
        found.append(where)
    if node.get("type") == "array" and "maxItems" not in node:
        found.append(where)
    for key, value in node.items():
        if key == "properties":
            found += [item for name, child in value.items() for item in _unbounded(child, f"{where}.{name}")]
        elif isinstance(value, (dict, list)):
            found += _unbounded(value, where)
    return found


def test_the_api_bounds_every_string_and_list_of_a_request():
    # API Gateway validates the body against this schema: nothing in a request it accepts is unbounded.
    assert _unbounded(api_json_schema()) == []
    assert "additionalProperties" in json.dumps(api_json_schema())


def test_the_api_schema_is_self_contained_draft_04():
    Draft4Validator.check_schema(api_json_schema())
    assert "$ref" not in str(api_json_schema())


@pytest.fixture
def parse_env(buckets, monkeypatch):
    buckets.put_object(Bucket=SOURCE_BUCKET, Key="src/etl.py", Body=DAG)
    for name, value in {"DAG_BUCKET": DAG_BUCKET, "SOURCE_BUCKETS": SOURCE_BUCKET,
                        "BUNDLE_LIMIT_BYTES": str(2 * 1024**3)}.items():
        monkeypatch.setenv(name, value)
    store_astro_targets(monkeypatch, TARGETS)
    return buckets


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=request_like)
def test_the_parse_handler_raises_nothing_but_invalid_request(parse_env, lambda_context, raw):
    try:
        summary = app.handler({"request": raw, "execution": "exec-h"}, lambda_context)
    except InvalidRequest as refused:
        event("refused")
        assert refused.report == f"s3://{DAG_BUCKET}/plans/exec-h.report.json"
    else:
        event("planned")
        assert summary["prefix"] == repo_prefix(summary["workspace"], summary["deployment"], summary["repo"])
    # The examples share one bucket: each wrote its plan or its refusal's report.
    keys = {item["Key"] for item in parse_env.list_objects_v2(Bucket=DAG_BUCKET).get("Contents", [])}
    assert keys <= {"plans/exec-h.json", "plans/exec-h.report.json"}, "Parse may write its plan or report, nothing else"


def test_a_request_near_the_step_functions_input_limit(parse_env):
    # One file under 2,500 paths: its dag_id is computed from its path, or the 2,500 DAGs would share one.
    parse_env.put_object(Bucket=SOURCE_BUCKET, Key="src/computed.py",
                         Body=b"from pathlib import Path\nfrom airflow import DAG\nDAG(dag_id=Path(__file__).stem)\n")
    dags = [{"dag_id": f"d{number}", "dag_file": f"s3://{SOURCE_BUCKET}/src/computed.py", "path": f"p/{number:05}.py"}
            for number in range(2500)]
    raw = {"astroWorkspace": "ws", "astroDeployment": "dep", "repo": "r", "body": {"dags": dags}}
    assert 200_000 < len(json.dumps(raw)) < 262_144

    plan, warnings = build_plan(raw, "exec-big", ALLOWED, TARGETS)

    assert len(plan.files) == 2500
    assert sum("is not defined literally" in warning for warning in warnings) == 2500


def test_too_many_entries_are_refused(parse_env):
    dags = [{"dag_id": "d", "dag_file": f"s3://{SOURCE_BUCKET}/src/etl.py", "path": f"{n}.py"} for n in range(5001)]
    with pytest.raises(InvalidRequest, match="at most 5000 items"):
        validate_request({"astroWorkspace": "ws", "astroDeployment": "dep", "repo": "r", "body": {"dags": dags}},
                         ALLOWED)
