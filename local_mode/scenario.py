"""Scenarios: requests to run against a local world, from a local DAG folder or as a raw API input.

    {"concurrent": false,
     "context": {"astroDeployments": {...}},
     "requests": [{"astroWorkspace": "...", "astroDeployment": "...", "repo": "...",
                   "dags_dir": "folder" | "event": {...}, "expect": "SUCCEEDED" | "FAILED"}]}

`context` (optional) is CDK context merged over cdk.json's (and the local mode's) for this run, key by key: e.g.
`{"astroDeployments": {"*/*": {"deploymentId": "local-{deployment}", "dagBundles": "per-repo"}}}` runs every
deployment with a Dag bundle per repo.

`expect` defaults to SUCCEEDED; a dags_dir request may also give the `commit`, `dry_run` and `force` to send. A
`dags_dir` (relative to the scenario file) is uploaded whole to the artifacts bucket and turned into a request in
the original contract; an `event` is the execution input exactly as given.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.shared.execution_names import execution_name

from local_mode.executions import ExecutionResult, ProgressListener, watch_execution
from local_mode.world import LocalWorld
from local_mode.requests import deploy_request, upload_folder

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
REQUEST_OPTIONS = ("dry_run", "force")


class ScenarioError(ValueError):
    """The scenario file cannot be run as written."""


@dataclass(frozen=True)
class ScenarioRequest:
    workspace: str | None
    deployment: str | None
    repo: str | None
    dags_dir: Path | None
    event: Any
    expect: str
    commit: str | None = None
    # The request's dry_run and force, for a dags_dir request (an event carries its own).
    options: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    requests: list[ScenarioRequest]
    concurrent: bool = False
    context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str) -> "Scenario":
        path = Path(path)
        try:
            document = json.loads(path.read_text())
        except OSError as error:
            raise ScenarioError(f"cannot read scenario {path}: {error.strerror or error}") from None
        except ValueError as error:
            raise ScenarioError(f"scenario {path} is not valid JSON: {error}") from None
        return cls.from_document(document, path.resolve().parent)

    @classmethod
    def from_document(cls, document: Any, base_dir: Path) -> "Scenario":
        if not isinstance(document, dict) or not isinstance(document.get("requests"), list) or not document["requests"]:
            raise ScenarioError('a scenario is an object with a non-empty "requests" list')
        concurrent = document.get("concurrent", False)
        if not isinstance(concurrent, bool):
            raise ScenarioError('"concurrent" must be true or false')
        context = document.get("context", {})
        if not isinstance(context, dict):
            raise ScenarioError('"context" must be an object of CDK context keys (as in cdk.json)')
        return cls(
            requests=[_request(entry, number, base_dir) for number, entry in enumerate(document["requests"], 1)],
            concurrent=concurrent,
            context=context,
        )


def _request(entry: Any, number: int, base_dir: Path) -> ScenarioRequest:
    where = f"request {number}"
    if not isinstance(entry, dict):
        raise ScenarioError(f"{where} is not an object")
    if ("dags_dir" in entry) == ("event" in entry):
        raise ScenarioError(f'{where} needs exactly one of "dags_dir" and "event"')
    expect = entry.get("expect", "SUCCEEDED")
    if expect not in FINAL_STATUSES:
        raise ScenarioError(f"{where}: expect must be one of {', '.join(FINAL_STATUSES)}, not {expect!r}")
    event = entry.get("event")
    names = event if isinstance(event, dict) else entry
    fields = {key: names.get(key) for key in ("astroWorkspace", "astroDeployment", "repo", "commit")}
    dags_dir = None
    if "dags_dir" in entry:
        missing = [key for key in ("astroWorkspace", "astroDeployment", "repo") if not isinstance(fields[key], str)]
        if missing:
            raise ScenarioError(f"{where}: a dags_dir request needs {', '.join(missing)}")
        if not isinstance(entry["dags_dir"], str):
            raise ScenarioError(f"{where}: dags_dir must be a path")
        dags_dir = (base_dir / entry["dags_dir"]).resolve()
        if not dags_dir.is_dir():
            raise ScenarioError(f"{where}: dags_dir {dags_dir} is not a folder")
    options = {key: entry[key] for key in REQUEST_OPTIONS if key in entry}
    if any(not isinstance(value, bool) for value in options.values()):
        raise ScenarioError(f"{where}: {' and '.join(REQUEST_OPTIONS)} must be true or false")
    return ScenarioRequest(
        workspace=_text(fields["astroWorkspace"]), deployment=_text(fields["astroDeployment"]),
        repo=_text(fields["repo"]), dags_dir=dags_dir, event=event, expect=expect, commit=_text(fields["commit"]),
        options=options,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def upload_dags_dir(s3, bucket: str, request: ScenarioRequest, run_id: str) -> dict:
    """Upload the folder to s3://<bucket>/<repo>/<run>/ and return the request a CI job would send for it."""
    assert request.dags_dir is not None and request.repo is not None
    prefix = f"{request.repo}/{run_id}"
    files = upload_folder(
        request.dags_dir, lambda path, content: s3.put_object(Bucket=bucket, Key=f"{prefix}/{path}", Body=content)
    )
    return {
        **deploy_request(
            request.workspace, request.deployment, request.repo, request.commit, files, f"s3://{bucket}/{prefix}"
        ),
        **request.options,
    }


@dataclass
class Outcome:
    request: ScenarioRequest
    result: ExecutionResult

    @property
    def as_expected(self) -> bool:
        return self.result.status == self.request.expect


def prepare(world: LocalWorld, request: ScenarioRequest) -> tuple[str, Any]:
    """The request's execution name and input, its DAG files uploaded to the artifacts bucket."""
    run_id = world.next_run_id()
    if request.dags_dir is None:
        execution_input = request.event
    else:
        execution_input = upload_dags_dir(world.client("s3"), world.artifacts_bucket, request, run_id)
    return execution_name(request.repo or "event", request.commit, run_id), execution_input


def run_scenario(world: LocalWorld, scenario: Scenario, listener: ProgressListener | None = None) -> list[Outcome]:
    """Run the requests in order, or all at once when the scenario is concurrent; return how each ended."""
    if not scenario.concurrent:
        outcomes = []
        for request in scenario.requests:
            name, execution_input = prepare(world, request)
            arn = world.start_execution(execution_input, name)
            outcomes.append(Outcome(request, watch_execution(world, arn, listener)))
        return outcomes
    # Every upload first, then every start back to back: the executions overlap as much as they can.
    prepared = [prepare(world, request) for request in scenario.requests]
    arns = [world.start_execution(execution_input, name) for name, execution_input in prepared]
    with ThreadPoolExecutor(max_workers=len(arns)) as pool:
        results = list(pool.map(lambda arn: watch_execution(world, arn, listener), arns))
    return [Outcome(request, result) for request, result in zip(scenario.requests, results)]
