"""The slim client keeps its own small copies of the request's rules (it cannot import the request model): they are
the model's, and every request it builds is one the model and the API's JSON schema accept."""

import argparse

from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from pydantic import TypeAdapter, ValidationError

from astro_dag_deploy import client
from functions.shared.models import Commit, DeployRequest, Segment, api_json_schema
from functions.shared.notification import console_url
from functions.shared.paths import SEGMENT_RE, SEGMENT_RULE

API_SCHEMA = Draft4Validator(api_json_schema())
BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"

segments = st.from_regex(SEGMENT_RE, fullmatch=True) | st.text(max_size=70)
commits = st.from_regex(client.COMMIT_RE, fullmatch=True) | st.text(max_size=70)
buckets = st.from_regex(BUCKET, fullmatch=True)
artifacts = st.builds("s3://{}/{}".format, buckets, st.text(max_size=600)) | st.builds("s3://{}".format, buckets) | (
    st.text(max_size=100))
# DAG files as the model takes them: an Airflow dag_id, a .py key with a plain file name, one target path each.
dag_specs = st.lists(
    st.tuples(st.from_regex(r"[A-Za-z0-9_.-]{1,250}", fullmatch=True), buckets,
              st.from_regex(r"[a-z0-9_]{1,40}", fullmatch=True)),
    min_size=1, max_size=5, unique_by=lambda spec: spec[2],
).map(lambda specs: [f"{dag_id}=s3://{bucket}/ci/{name}.py" for dag_id, bucket, name in specs])


def accepts(annotation: object, value: str) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        return False
    return True


def assert_valid_request(request: dict) -> None:
    DeployRequest.model_validate(request)
    assert list(API_SCHEMA.iter_errors(request)) == []


def test_the_clients_rules_are_written_as_the_models():
    assert client.SEGMENT_RE.pattern == SEGMENT_RE.pattern and client.SEGMENT_RULE == SEGMENT_RULE
    assert TypeAdapter(Commit).json_schema()["pattern"] == f"^{client.COMMIT_RE.pattern}$"


@given(segments)
def test_the_client_takes_exactly_the_names_the_model_takes(name):
    assert bool(client.SEGMENT_RE.fullmatch(name)) == accepts(Segment, name)


@given(commits)
def test_the_client_takes_exactly_the_commits_the_model_takes(commit):
    assert bool(client.COMMIT_RE.fullmatch(commit)) == accepts(Commit, commit)


@given(workspace=segments, deployment=segments, repo=segments, commit=st.none() | commits, uri=artifacts,
       dry_run=st.booleans(), force=st.booleans())
def test_every_push_request_the_client_builds_is_valid(workspace, deployment, repo, commit, uri, dry_run, force):
    args = argparse.Namespace(workspace=workspace, deployment=deployment, repo=repo, commit=commit, artifacts=uri,
                              dry_run=dry_run, force=force)
    try:
        bucket, key_prefix = client.pushed_location(args)
    except client.CommandError:
        return  # refused before anything is uploaded
    request = client.pushed_request(args, bucket, key_prefix)

    assert_valid_request(request)
    assert request["body"]["source_prefix"].startswith(f"s3://{bucket}/")
    model = DeployRequest.model_validate(request)
    assert (model.dry_run, model.force) == (dry_run, force)


@given(workspace=segments, deployment=segments, repo=segments, commit=st.none() | commits, dags=dag_specs)
def test_every_submit_request_the_client_builds_from_model_rule_dags_is_valid(workspace, deployment, repo, commit,
                                                                               dags):
    # dry_run and force are added as for push (proved above).
    args = argparse.Namespace(workspace=workspace, deployment=deployment, repo=repo, commit=commit, request=None,
                              dag=dags, dry_run=True, force=True)
    try:
        request = client.submitted_request(args)
    except client.CommandError:
        return
    assert_valid_request(request)


@given(st.text(max_size=200) | st.builds("arn:aws:states:{}:123456789012:execution:AstroDagDeploy:{}".format,
                                         st.from_regex(r"[a-z]{2}-[a-z]+-\d", fullmatch=True), st.text(max_size=80)))
def test_the_clients_console_link_is_the_notifications(execution_arn):
    assert client.console_url(execution_arn) == console_url(execution_arn)


def test_dry_run_and_force_are_booleans_in_the_model_and_the_schema():
    request = {"astroWorkspace": "ws", "astroDeployment": "dep", "repo": "r", "body": {}, "dry_run": True,
               "force": False}
    assert_valid_request(request)
    for wrong in ({"dry_run": "true"}, {"force": 1}, {"dryRun": True}):
        assert list(API_SCHEMA.iter_errors({**request, **wrong}))
