"""Pushes of one-file repos to analytics/production, and what the stand-in Astro received of them (tests of bursts
on the shared main bundle)."""

import hashlib
from pathlib import Path

from local_mode.astro_standin import read_invocations
from local_mode.executions import ExecutionResult
from local_mode.scenario import Scenario
from local_mode.world import LocalWorld
from testkit import execution_output

DEPLOYMENT_ID = "local-production"


def write_repo(folder: Path, repo: str, commit: str) -> tuple[str, str]:
    """One DAG file for the repo at that commit; return its path in the bundle and its SHA-256."""
    source = f"from airflow import DAG\nDAG('{repo}_daily', schedule=None)  # commit {commit}\n"
    (folder / repo).mkdir(parents=True, exist_ok=True)
    (folder / repo / f"{repo}_daily.py").write_text(source)
    return f"{repo}/{repo}_daily.py", hashlib.sha256(source.encode()).hexdigest()


def scenario(folder: Path, pushes: list[tuple[str, str]], concurrent: bool = False) -> Scenario:
    """A request per (repo, commit) to analytics/production, each from a folder of its own."""
    requests = []
    for index, (repo, commit) in enumerate(pushes):
        write_repo(folder / str(index), repo, commit)
        requests.append({"astroWorkspace": "analytics", "astroDeployment": "production", "repo": repo,
                         "commit": commit, "dags_dir": f"{index}/{repo}"})
    return Scenario.from_document({"concurrent": concurrent, "requests": requests}, folder)


def ships(world: LocalWorld) -> list[dict]:
    return sorted((ship for ship in read_invocations(world.astro_state_dir) if ship["deployment_id"] == DEPLOYMENT_ID),
                  key=lambda ship: ship["start"])


def carrying_version(world: LocalWorld, result: ExecutionResult) -> tuple[str, str | None]:
    """The version that carries the execution's commit, as its output says, and whose ship it was (None: its own)."""
    output = execution_output(world, result.arn)
    if "deploy" in output:
        return output["deploy"]["version"], None
    return output["carried"]["version"], output["carried"]["shipped_by"]
