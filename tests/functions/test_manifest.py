"""What is live: recorded per repo and per Dag bundle (functions/shared/manifest.py), written by Deploy
(functions/deploy/ship_record.py), compared with a request (functions/shared/live_comparison.py)."""

import hashlib
import json

import pytest
from testkit import DAG_BUCKET

from functions.shared.execution_state import RunScope
from functions.deploy.ship_record import begin_ship, confirm_ship, record_ship
from functions.shared.live_comparison import LISTED, compare_with_live, diff_with_live
from functions.shared.manifest import fingerprint, read_bundle_ship, read_deployment, read_repo_manifest
from functions.shared.paths import bundle_ship_key, repo_manifest_key
from functions.shared.plan_store import Plan, PlannedFile, save_plan

PREFIX = "dags/ws/dep/repo-a/"


def planned(path: str, content: str, dag_ids: tuple[str, ...] = ()) -> PlannedFile:
    md5 = hashlib.md5(content.encode()).hexdigest()
    return PlannedFile(source_bucket="src", source_key=f"k/{path}", etag=f'"{md5}"', size=len(content), path=path,
                       kind="dag" if dag_ids else "dependency", dag_ids=list(dag_ids))


def make_plan(files: dict[str, str], execution: str = "exec-1", bundle: str = "main", commit: str = "abc1",
              dags: dict[str, tuple[str, ...]] | None = None) -> Plan:
    dags = dags or {}
    return Plan(workspace="ws", deployment="dep", repo="repo-a", commit=commit, execution=execution, bundle=bundle,
                prefix=PREFIX, files=[planned(path, content, dags.get(path, ())) for path, content in files.items()])


def stored(s3, files: dict[str, str], repo: str = "repo-a") -> None:
    """The repo's prefix as Upload leaves it (copies of the planned files)."""
    for path, content in files.items():
        s3.put_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/{repo}/{path}", Body=content.encode())


def deploy(s3, files: dict[str, str], execution: str = "exec-1", bundle: str = "main", version: str = "v1",
           dags: dict[str, tuple[str, ...]] | None = None) -> Plan:
    """What a successful execution leaves: its files uploaded, its ship begun and confirmed."""
    plan = make_plan(files, execution, bundle, dags=dags)
    save_plan(DAG_BUCKET, plan)
    stored(s3, files)
    pending = begin_ship(DAG_BUCKET, RunScope(workspace="ws", deployment="dep", repo="repo-a", commit="abc1",
                                              execution=execution, bundle=bundle), "astro-dep")
    assert record_ship(DAG_BUCKET, pending, version) is None
    return plan


FILES = {"etl.py": "from airflow import DAG\nDAG('etl')\n", "sql/q.sql": "select 1"}


def test_a_confirmed_ship_records_the_repo_and_the_bundle(buckets):
    stored(buckets, {"other.py": "x = 1"}, repo="repo-b")
    deploy(buckets, FILES, dags={"etl.py": ("etl",)})

    manifest = read_repo_manifest(DAG_BUCKET, "ws", "dep", "repo-a")
    assert (manifest.commit, manifest.execution, manifest.bundle, manifest.bundle_version) == (
        "abc1", "exec-1", "main", "v1")
    assert manifest.deployment_id == "astro-dep" and manifest.deployed_at.endswith("+00:00")
    assert [(entry.path, entry.checksum) for entry in manifest.files] == [
        (path, planned(path, content).checksum) for path, content in FILES.items()]
    # The copies' ETags, as listed under the repo's prefix.
    etags = {path: buckets.head_object(Bucket=DAG_BUCKET, Key=PREFIX + path)["ETag"].strip('"') for path in FILES}
    assert manifest.stored() == etags
    assert manifest.dags() == [{"dag_id": "etl", "path": "etl.py"}]
    ship = read_bundle_ship(DAG_BUCKET, "ws", "dep", "main")
    assert (ship.state, ship.version, ship.execution) == ("shipped", "v1", "exec-1")
    # The main bundle carries every repo of the deployment.
    assert {shipped.repo: shipped.files for shipped in ship.repos} == {"repo-a": 2, "repo-b": 1}
    assert ship.holds("repo-a", fingerprint(etags))
    assert read_deployment(DAG_BUCKET, "ws", "dep") == ([manifest], [ship])


def test_a_ship_begun_and_never_confirmed_stays_shipping_and_the_repo_keeps_its_last_record(buckets):
    deploy(buckets, FILES)
    stored(buckets, {"etl.py": "changed"})
    begin_ship(DAG_BUCKET, RunScope(workspace="ws", deployment="dep", repo="repo-a", execution="exec-2"), "astro-dep")

    assert read_bundle_ship(DAG_BUCKET, "ws", "dep", "main").state == "shipping"
    assert read_repo_manifest(DAG_BUCKET, "ws", "dep", "repo-a").execution == "exec-1"


def test_a_record_that_cannot_be_written_is_reported_not_raised(buckets):
    save_plan(DAG_BUCKET, make_plan(FILES))
    pending = begin_ship(DAG_BUCKET, RunScope(workspace="ws", deployment="dep", repo="repo-a", execution="exec-1"),
                         "astro-dep")
    buckets.delete_object(Bucket=DAG_BUCKET, Key="plans/exec-1.json")

    problem = record_ship(DAG_BUCKET, pending, "v1")

    assert problem.startswith("what is live could not be recorded:") and "NoSuchKey" in problem
    assert read_bundle_ship(DAG_BUCKET, "ws", "dep", "main").state == "shipping"


def test_nothing_recorded_is_never_unchanged_and_everything_is_added(buckets):
    comparison = compare_with_live(DAG_BUCKET, make_plan(FILES, dags={"etl.py": ("etl",)}))

    assert not comparison.unchanged and comparison.live_commit is None
    assert comparison.reason == "nothing is recorded as live for repo repo-a in ws/dep"
    assert (comparison.diff.added, comparison.diff.files_added) == (2, ["etl.py", "sql/q.sql"])
    assert comparison.diff.dag_ids_added == ["etl"]


def test_the_same_files_held_by_the_bundles_last_confirmed_ship_are_unchanged(buckets):
    deploy(buckets, FILES, version="v7")

    comparison = compare_with_live(DAG_BUCKET, make_plan(FILES, execution="exec-2"))

    assert comparison.unchanged, comparison.reason
    assert comparison.live_execution == "exec-1" and "version v7" in comparison.reason
    assert comparison.diff.unchanged == 2


def test_files_added_changed_and_removed_by_checksum_and_dag_ids_by_name(buckets):
    deploy(buckets, {**FILES, "old.py": "from airflow import DAG\nDAG('old')\n"},
           dags={"etl.py": ("etl",), "old.py": ("old",)})
    request = {"etl.py": "from airflow import DAG\nDAG('etl2')\n", "sql/q.sql": "select 1", "new.txt": "n"}

    comparison = compare_with_live(DAG_BUCKET, make_plan(request, execution="exec-2", dags={"etl.py": ("etl2",)}))

    assert not comparison.unchanged
    assert comparison.reason == "1 files added, 1 changed, 1 removed since execution exec-1 (commit abc1)"
    diff = comparison.diff
    assert (diff.files_added, diff.files_changed, diff.files_removed, diff.unchanged) == (
        ["new.txt"], ["etl.py"], ["old.py"], 1)
    assert (diff.dag_ids_added, diff.dag_ids_removed) == (["etl2"], ["etl", "old"])


def test_long_lists_are_bounded_and_counted(buckets):
    many = {f"f{number:03}.sql": "x" for number in range(LISTED + 5)}
    diff = diff_with_live(make_plan(many), None)
    assert diff.added == LISTED + 5
    assert len(diff.files_added) == LISTED + 1 and diff.files_added[-1] == "... and 5 more"


def test_another_bundle_a_changed_prefix_or_an_unconfirmed_ship_is_not_unchanged(buckets):
    deploy(buckets, FILES)
    again = make_plan(FILES, execution="exec-2")

    moved = compare_with_live(DAG_BUCKET, make_plan(FILES, execution="exec-2", bundle="repo-a"))
    assert not moved.unchanged and "shipped to Dag bundle main; this request ships to repo-a" in moved.reason

    buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "stray.py", Body=b"x")
    drifted = compare_with_live(DAG_BUCKET, again)
    assert not drifted.unchanged and "no longer holds what execution exec-1" in drifted.reason
    buckets.delete_object(Bucket=DAG_BUCKET, Key=PREFIX + "stray.py")

    begin_ship(DAG_BUCKET, RunScope(workspace="ws", deployment="dep", repo="repo-b", execution="exec-b"), "astro-dep")
    unconfirmed = compare_with_live(DAG_BUCKET, again)
    assert not unconfirmed.unchanged
    assert "Astro never confirmed the last ship of Dag bundle main (execution exec-b)" in unconfirmed.reason


def test_a_confirmed_ship_that_held_other_files_of_the_repo_is_not_unchanged(buckets):
    deploy(buckets, FILES)
    ship = read_bundle_ship(DAG_BUCKET, "ws", "dep", "main")
    ship.repos[0].fingerprint = "sha256:other"
    buckets.put_object(Bucket=DAG_BUCKET, Key=bundle_ship_key("ws", "dep", "main"),
                       Body=json.dumps(ship.to_json()).encode())

    comparison = compare_with_live(DAG_BUCKET, make_plan(FILES, execution="exec-2"))

    assert not comparison.unchanged and "(execution exec-1) held other files" in comparison.reason


def test_checksums_are_md5s_where_known_else_the_etag():
    base = {"source_bucket": "b", "source_key": "k", "size": 1, "path": "a.sql", "kind": "dependency"}
    assert PlannedFile(etag='"0123abcd"', **base).checksum == "md5:0123abcd"
    assert PlannedFile(etag='"0123abcd-2"', **base).checksum == "etag:0123abcd-2"
    kms = PlannedFile(etag='"0123abcd"', server_side_encryption="aws:kms", **base)
    assert kms.checksum == "etag:0123abcd"
    # Parse's own MD5 of the bytes it read wins over any ETag.
    assert PlannedFile(etag='"0123abcd"', server_side_encryption="aws:kms", md5="ffee", **base).checksum == "md5:ffee"


def test_fingerprints_change_with_any_path_or_etag():
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"}) != fingerprint({"b": "2"})


@pytest.mark.parametrize("bundle", ["../x", "Main", "a/b", ""])
def test_keys_are_built_from_valid_names_only(bundle):
    assert repo_manifest_key("ws", "dep", "repo-a") == "manifests/ws/dep/repos/repo-a.json"
    assert bundle_ship_key("ws", "dep", "main") == "manifests/ws/dep/bundles/main.json"
    with pytest.raises(ValueError):
        bundle_ship_key("ws", "dep", bundle)
    with pytest.raises(ValueError):
        repo_manifest_key("ws", "..", "repo-a")
    with pytest.raises(ValueError):
        repo_manifest_key("ws", "dep", "../repo")


def test_confirm_ship_writes_the_repo_then_the_bundle(buckets, monkeypatch):
    save_plan(DAG_BUCKET, make_plan(FILES))
    stored(buckets, FILES)
    pending = begin_ship(DAG_BUCKET, RunScope(workspace="ws", deployment="dep", repo="repo-a", execution="exec-1"),
                         "astro-dep")
    written = []
    buckets.meta.events.register("provide-client-params.s3.PutObject",
                                 lambda params, **_: written.append(params["Key"]))

    confirm_ship(DAG_BUCKET, pending, [make_plan(FILES)], "v1")

    # A failure between the two leaves the bundle "shipping": never taken for unchanged.
    assert written == [repo_manifest_key("ws", "dep", "repo-a"), bundle_ship_key("ws", "dep", "main")]
