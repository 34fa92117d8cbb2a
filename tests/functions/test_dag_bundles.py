"""Which Dag bundle a repo ships to: the derivation rule, explicit names, and the Parse checks around them."""

import pytest
from testkit import DAG_BUCKET, SOURCE_BUCKET

from functions.parse.planning import build_plan
from functions.shared.astro_targets import resolve_astro_target
from functions.shared.dag_bundles import (
    MAIN_BUNDLE, UnmappableRepo, bundle_for, derived_bundle_name, is_bundle_name, lock_key,
)
from functions.shared.errors import InvalidRequest

ALLOWED = frozenset({SOURCE_BUCKET})
TARGETS = {
    "ws/main": {"deploymentId": "dep-main"},
    "ws/split": {"deploymentId": "dep-split", "dagBundles": "per-repo", "bundleNames": {"very_long_repository_name_of_the_team": "team"}},
}


@pytest.mark.parametrize("repo, bundle", [
    ("marketing_etl", "marketing_etl"),
    ("Marketing.ETL", "marketing-etl"),
    ("repo-2", "repo-2"),
    ("x" * 32, "x" * 32),
])
def test_a_repo_name_maps_to_a_bundle_name_by_the_documented_rule(repo, bundle):
    assert derived_bundle_name(repo) == bundle and is_bundle_name(bundle)


@pytest.mark.parametrize("repo, reason", [("x" * 33, "at most 32 characters"), ("Main", "'main' bundle")])
def test_a_repo_name_that_cannot_map_says_how_to_name_its_bundle(repo, reason):
    with pytest.raises(UnmappableRepo, match=reason) as raised:
        derived_bundle_name(repo)
    assert f'"bundleNames": {{"{repo}": ' in str(raised.value)


def test_main_mode_ships_every_repo_to_main_and_per_repo_mode_to_its_own():
    assert bundle_for("x" * 40, "main", {}) == MAIN_BUNDLE
    assert bundle_for("etl", "per-repo", {}) == "etl"
    assert bundle_for("etl", "per-repo", {"etl": "pipelines"}) == "pipelines"
    assert resolve_astro_target("ws", "split", TARGETS).bundle("very_long_repository_name_of_the_team") == "team"


def test_locks_are_per_deployment_for_main_and_per_bundle_otherwise():
    assert lock_key("ws", "dep") == lock_key("ws", "dep", MAIN_BUNDLE) == "ws/dep"
    assert lock_key("ws", "dep", "a") != lock_key("ws", "dep", "b")
    assert lock_key("ws", "dep", "a").startswith("ws/dep#")


def request(repo: str, deployment: str = "split") -> dict:
    return {"astroWorkspace": "ws", "astroDeployment": deployment, "repo": repo,
            "body": {"dags": [{"dag_id": "etl", "dag_file": f"s3://{SOURCE_BUCKET}/etl.py"}]}}


@pytest.fixture
def sources(buckets):
    buckets.put_object(Bucket=SOURCE_BUCKET, Key="etl.py",
                       Body=b"from airflow import DAG\nDAG(dag_id='etl')\n")
    return buckets


def test_parse_names_the_bundle_in_its_plan(sources):
    plan, _ = build_plan(request("Marketing.ETL"), "e", ALLOWED, TARGETS, DAG_BUCKET)
    assert plan.bundle == "marketing-etl"
    plan, _ = build_plan(request("Marketing.ETL", "main"), "e", ALLOWED, TARGETS, DAG_BUCKET)
    assert plan.bundle == MAIN_BUNDLE


def test_parse_refuses_a_repo_that_maps_to_no_bundle(sources):
    with pytest.raises(InvalidRequest, match="maps to no Dag bundle: bundle names are at most 32 characters"):
        build_plan(request("r" * 40), "e", ALLOWED, TARGETS, DAG_BUCKET)


def test_parse_refuses_a_repo_whose_bundle_another_repo_of_the_deployment_uses(sources):
    sources.put_object(Bucket=DAG_BUCKET, Key="dags/ws/split/marketing.etl/etl.py", Body=b"x")
    sources.put_object(Bucket=DAG_BUCKET, Key="dags/ws/split2/marketing-etl/etl.py", Body=b"another deployment")

    with pytest.raises(InvalidRequest) as raised:
        build_plan(request("Marketing-ETL"), "e", ALLOWED, TARGETS, DAG_BUCKET)

    assert "repo 'Marketing-ETL' and repo 'marketing.etl' (already deployed) both map to Dag bundle " \
           "'marketing-etl'" in str(raised.value)
    assert '"bundleNames": {"Marketing-ETL": "<another bundle name>"}' in str(raised.value)
    # The repo itself, redeployed, is no clash.
    assert build_plan(request("marketing.etl"), "e", ALLOWED, TARGETS, DAG_BUCKET)[0].bundle == "marketing-etl"


def test_parse_lists_the_deployment_once_for_the_bundle_check_and_what_is_live(sources):
    sources.put_object(Bucket=DAG_BUCKET, Key="dags/ws/split/finance/report.py",
                       Body=b"from airflow import DAG\nDAG(dag_id='report')\n")
    listed: list[str] = []
    sources.meta.events.register("provide-client-params.s3.ListObjectsV2",
                                 lambda params, **_: listed.append(params["Prefix"]))

    plan, _ = build_plan(request("marketing"), "e", ALLOWED, TARGETS, DAG_BUCKET)

    assert plan.bundle == "marketing"
    assert [prefix for prefix in listed if prefix.startswith("dags/")] == ["dags/ws/split/"]
