"""Deploy's gathering: one GET per repo when its archive holds exactly the prefix, the objects one by one when not,
then that repo's archive written from the files downloaded; either way the bundle holds exactly what the prefix's
listing says."""

import pytest
from botocore.exceptions import ClientError
from bundle_kit import REPOS, archive_keys, archive_members, bundle_of, folder_files, seed
from testkit import DAG_BUCKET

from functions.deploy.bundling import gather_bundle
from functions.shared.errors import BundleFailed

def test_every_repo_comes_from_its_archive_with_one_get_each(buckets, gets, tmp_path):
    seed(buckets)
    gets.clear()

    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")

    assert sorted(gets) == archive_keys(*REPOS)
    assert folder_files(tmp_path / "dags") == bundle_of(REPOS)
    assert (bundle.files, bundle.python_files, bundle.repos, bundle.archived_repos) == (5, 4, sorted(REPOS),
                                                                                       sorted(REPOS))
    assert bundle.bytes == sum(len(body) for body in bundle_of(REPOS).values())


def test_a_repo_changed_since_its_archive_is_read_object_by_object(buckets, gets, tmp_path):
    seed(buckets)
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/added_by_hand.py", Body=b"# by hand\n")
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-c/c.py", Body=b"from airflow import DAG  # c2\n")
    gets.clear()

    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")

    expected = bundle_of(REPOS) | {"repo-b/added_by_hand.py": b"# by hand\n",
                                   "repo-c/c.py": b"from airflow import DAG  # c2\n"}
    assert folder_files(tmp_path / "dags") == expected
    assert bundle.archived_repos == ["repo-a"]
    # Every archive is tried once; only the stale repos' objects are read.
    assert sorted(gets) == sorted(archive_keys(*REPOS) + [
        "dags/ws/dep/repo-b/added_by_hand.py", "dags/ws/dep/repo-b/pkg/helper.py", "dags/ws/dep/repo-b/report.py",
        "dags/ws/dep/repo-c/c.py",
    ])


def test_a_repo_without_an_archive_is_read_object_by_object(buckets, gets, tmp_path):
    seed(buckets, {"repo-a": REPOS["repo-a"]})
    seed(buckets, {"repo-b": REPOS["repo-b"]}, archived=False)
    gets.clear()

    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")

    assert folder_files(tmp_path / "dags") == bundle_of({"repo-a": REPOS["repo-a"], "repo-b": REPOS["repo-b"]})
    assert bundle.archived_repos == ["repo-a"]
    assert sorted(gets) == sorted(archive_keys("repo-a", "repo-b") + [
        "dags/ws/dep/repo-b/pkg/helper.py", "dags/ws/dep/repo-b/report.py"])


def test_a_damaged_archive_is_replaced_by_the_objects(buckets, tmp_path):
    seed(buckets, {"repo-a": {"etl.py": b"A" * 1000}})
    key = "archives/ws/dep/repo-a.zip"
    body = bytearray(buckets.get_object(Bucket=DAG_BUCKET, Key=key)["Body"].read())
    body[30 + len("etl.py") + 2] ^= 0xFF
    buckets.put_object(Bucket=DAG_BUCKET, Key=key, Body=bytes(body))

    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")

    assert folder_files(tmp_path / "dags") == {"repo-a/etl.py": b"A" * 1000}
    assert bundle.archived_repos == []


def test_an_archive_is_never_a_file_of_any_bundle(buckets, tmp_path):
    seed(buckets)
    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")
    assert not any("archives" in path or path.endswith(".zip") for path in folder_files(tmp_path / "dags"))
    assert bundle.files == 5


def test_a_per_repo_bundle_comes_from_its_one_archive(buckets, gets, tmp_path):
    seed(buckets)
    gets.clear()

    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags", repo="repo-b")

    assert gets == archive_keys("repo-b")
    assert folder_files(tmp_path / "dags") == REPOS["repo-b"]
    assert (bundle.repos, bundle.archived_repos) == (["repo-b"], ["repo-b"])


def test_a_repo_of_several_listing_pages_is_one_get(buckets, gets, tmp_path):
    many = {f"dag_{number:04}.py": f"# {number}\n".encode() for number in range(1001)}
    seed(buckets, {"repo-a": many})
    gets.clear()

    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")

    assert gets == archive_keys("repo-a")
    assert bundle.files == 1001 and folder_files(tmp_path / "dags") == bundle_of({"repo-a": many})


def test_a_repo_read_object_by_object_is_archived_from_its_downloads_for_the_next_ship(buckets, gets, tmp_path):
    seed(buckets, archived=False)
    gets.clear()

    first = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "first")

    # Each object read once, by the gathering itself: writing the archives reads nothing more.
    objects = sorted(f"dags/ws/dep/{path}" for path in bundle_of(REPOS))
    assert sorted(gets) == sorted(archive_keys(*REPOS) + objects)
    assert first.archived_repos == []
    assert [(archive.key, archive.written, archive.files) for archive in first.archives] == [
        (f"archives/ws/dep/{repo}.zip", True, len(files)) for repo, files in REPOS.items()]
    for repo, files in REPOS.items():
        assert archive_members(buckets, repo) == {
            path: (body, buckets.head_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/{repo}/{path}")["ETag"])
            for path, body in files.items()}
    gets.clear()

    second = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "second")

    assert sorted(gets) == archive_keys(*REPOS)
    assert (second.archived_repos, second.archives) == (sorted(REPOS), [])
    assert folder_files(tmp_path / "second") == bundle_of(REPOS)


def test_a_push_of_one_repo_reads_that_repo_once_and_archives_it_alone(buckets, gets, tmp_path):
    seed(buckets)
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/report.py", Body=b"from airflow import DAG  # b2\n")
    gets.clear()

    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")

    assert bundle.archived_repos == ["repo-a", "repo-c"]
    assert [archive.key for archive in bundle.archives] == ["archives/ws/dep/repo-b.zip"]
    assert sorted(gets) == sorted(archive_keys(*REPOS) + ["dags/ws/dep/repo-b/pkg/helper.py",
                                                          "dags/ws/dep/repo-b/report.py"])
    assert archive_members(buckets, "repo-b")["report.py"][0] == b"from airflow import DAG  # b2\n"


def test_the_archive_carries_the_etag_of_the_bytes_read_not_of_the_listing(buckets, tmp_path):
    seed(buckets, {"repo-a": {"etl.py": b"v1"}}, archived=False)
    key = "dags/ws/dep/repo-a/etl.py"
    listed_etag = buckets.head_object(Bucket=DAG_BUCKET, Key=key)["ETag"]
    changed: list[str] = []

    def change_after_the_listing(params, **_):
        # Someone writes the object between Deploy's listing and its GET.
        if params["Key"] == key and not changed:
            changed.append(buckets.put_object(Bucket=DAG_BUCKET, Key=key, Body=b"v2")["ETag"])

    buckets.meta.events.register("provide-client-params.s3.GetObject", change_after_the_listing)
    gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "first")
    buckets.meta.events.unregister("provide-client-params.s3.GetObject", change_after_the_listing)

    assert folder_files(tmp_path / "first") == {"repo-a/etl.py": b"v2"}
    assert archive_members(buckets, "repo-a") == {"etl.py": (b"v2", changed[0])} and changed[0] != listed_etag
    # The bytes v1 come back: their ETag is the listed one, which the archive does not claim to hold.
    buckets.put_object(Bucket=DAG_BUCKET, Key=key, Body=b"v1")
    again = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "again")
    assert folder_files(tmp_path / "again") == {"repo-a/etl.py": b"v1"}
    assert again.archived_repos == []


def test_an_archive_that_cannot_be_written_is_reported_and_the_ship_goes_on(buckets, gets, tmp_path):
    seed(buckets, {"repo-a": REPOS["repo-a"]}, archived=False)

    def fail(params, **_):
        if params["Key"].startswith("archives/"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "injected"}}, "PutObject")

    buckets.meta.events.register("provide-client-params.s3.PutObject", fail)
    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "first")
    buckets.meta.events.unregister("provide-client-params.s3.PutObject", fail)

    assert folder_files(tmp_path / "first") == bundle_of({"repo-a": REPOS["repo-a"]})
    [archive] = bundle.archives
    assert (archive.key, archive.written) == ("archives/ws/dep/repo-a.zip", False) and "AccessDenied" in archive.error
    gets.clear()
    gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "second")
    assert sorted(gets) == sorted(archive_keys("repo-a") + [f"dags/ws/dep/repo-a/{path}" for path in REPOS["repo-a"]])


def test_a_bundle_that_cannot_be_downloaded_writes_no_archive(buckets, tmp_path):
    seed(buckets, archived=False)

    def fail(params, **_):
        if params["Key"] == "dags/ws/dep/repo-c/c.py":
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}}, "GetObject")

    buckets.meta.events.register("provide-client-params.s3.GetObject", fail)
    with pytest.raises(BundleFailed, match="SlowDown"):
        gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "dags")
    buckets.meta.events.unregister("provide-client-params.s3.GetObject", fail)

    assert "Contents" not in buckets.list_objects_v2(Bucket=DAG_BUCKET, Prefix="archives/")
