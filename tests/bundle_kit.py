"""The DAG bucket seeded with repos, and what a gathered bundle or a repo archive holds (tests of Deploy's
gathering)."""

import io
import tempfile
import zipfile
from pathlib import Path

from testkit import DAG_BUCKET

from functions.deploy.bundling import gather_bundle

REPOS = {
    "repo-a": {"etl.py": b"from airflow import DAG\n", "sql/q.sql": b"select 1"},
    "repo-b": {"pkg/helper.py": b"VALUE = 1\n", "report.py": b"from airflow import DAG  # b\n"},
    "repo-c": {"c.py": b"from airflow import DAG  # c\n"},
}


def seed(s3, repos: dict[str, dict[str, bytes]] = REPOS, archived: bool = True) -> None:
    for repo, files in repos.items():
        for path, body in files.items():
            s3.put_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/{repo}/{path}", Body=body)
        if archived:
            # As a ship of the repo leaves it: read object by object, then archived.
            with tempfile.TemporaryDirectory() as folder:
                gather_bundle(DAG_BUCKET, "ws", "dep", Path(folder), repo=repo)


def archive_members(s3, repo: str) -> dict[str, tuple[bytes, str]]:
    body = s3.get_object(Bucket=DAG_BUCKET, Key=f"archives/ws/dep/{repo}.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {member.filename: (archive.read(member), member.comment.decode()) for member in archive.infolist()}


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def bundle_of(repos: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    return {f"{repo}/{path}": body for repo, files in repos.items() for path, body in files.items()}


def archive_keys(*repos: str) -> list[str]:
    return sorted(f"archives/ws/dep/{repo}.zip" for repo in repos)
