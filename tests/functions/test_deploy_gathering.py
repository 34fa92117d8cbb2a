"""Deploy's gathering: one GET per repo when its archive holds exactly the prefix, the objects one by one when not;
either way the bundle holds exactly what the prefix's listing says."""

from pathlib import Path

import pytest
from testkit import DAG_BUCKET

from functions.deploy.bundling import gather_bundle
from functions.shared.aws import client
from functions.shared.repo_archive import write_repo_archive

REPOS = {
    "repo-a": {"etl.py": b"from airflow import DAG\n", "sql/q.sql": b"select 1"},
    "repo-b": {"pkg/helper.py": b"VALUE = 1\n", "report.py": b"from airflow import DAG  # b\n"},
    "repo-c": {"c.py": b"from airflow import DAG  # c\n"},
}


@pytest.fixture
def gets(buckets) -> list[str]:
    """The key of every GetObject the steps make from here on."""
    keys: list[str] = []
    client("s3").meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: keys.append(params["Key"]))
    return keys


def seed(s3, repos: dict[str, dict[str, bytes]] = REPOS, archived: bool = True) -> None:
    for repo, files in repos.items():
        for path, body in files.items():
            s3.put_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/{repo}/{path}", Body=body)
        if archived:
            write_repo_archive(DAG_BUCKET, "ws", "dep", repo)


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def bundle_of(repos: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    return {f"{repo}/{path}": body for repo, files in repos.items() for path, body in files.items()}


def archive_keys(*repos: str) -> list[str]:
    return sorted(f"archives/ws/dep/{repo}.zip" for repo in repos)


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
