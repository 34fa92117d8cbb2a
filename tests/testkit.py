"""Names and stand-ins the tests share (importable, unlike conftest.py)."""

import io
import itertools
import json
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from functions.shared.astro_targets import PARAMETER_PATH_VARIABLE, parameter_name
from functions.shared.aws import client
from functions.shared.errors import AstroDeployFailed, AstroUnavailable
from functions.shared.execution_names import execution_name

from local_mode.executions import ExecutionResult, execution_history
from local_mode.project import EXAMPLES_DIR
from local_mode.scenario import Scenario, run_scenario, upload_dags_dir
from local_mode.world import LocalWorld

REGION = "eu-west-1"
DAG_BUCKET = "test-dag-bucket"
SOURCE_BUCKET = "test-ci-artifacts"
# Context for a local world whose deployments ship to one Dag bundle per repo.
PER_REPO_BUNDLES = {"astroDeployments": {"*/*": {"deploymentId": "local-{deployment}", "dagBundles": "per-repo"}}}
# Short function timeouts keep a recovery's wait (a function's timeout plus Lambda's Init phase) short; the Deploy
# function leaves the CLI its timeout minus 30 s.
SHORT_FUNCTION_TIMEOUTS = {"stepTimeoutsSeconds": {"Parse": 12, "Snapshot": 12, "ClearPrefix": 12, "Upload": 12},
                           "deployTimeoutSeconds": 40}

_TARGET_PATHS = (f"/test-{number}/astro-deployments/" for number in itertools.count(1))


def store_astro_targets(monkeypatch, targets: dict) -> None:
    """Configure `astroDeployments` for the handlers as the stack does: one SSM parameter per entry (in the
    embedded AWS), under a path of their own, named in the functions' environment."""
    path = next(_TARGET_PATHS)
    for key, entry in targets.items():
        client("ssm").put_parameter(Name=parameter_name(path, key), Value=json.dumps(entry), Type="String")
    monkeypatch.setenv(PARAMETER_PATH_VARIABLE, path)


VERSION = "2024-05-01T10:20:30.1234567Z"
SUCCESS = (
    f'print("\\nSuccessfully uploaded DAGs with version \\x1b[1m{VERSION}\\x1b[0m to Astro. Navigate to the '
    'Airflow UI to confirm that your deploy was successful. The Airflow UI takes about 1 minute to update.")'
)

# What the real astro CLI does in each situation (Python run by a stand-in executable), the error the deploy step
# raises for it, and what its message says (for Astro deployment dep-id-1 of ws/dep, as the unit tests configure).
CLI_OUTCOMES = {
    "canceled on an empty folder, exit 0": (
        'print("Warning: No DAGs found. This will delete any existing DAGs. Are you sure you want to deploy?")\n'
        'print("Canceling deploy...")',
        AstroDeployFailed, r"exited 0 without its success line, so nothing was deployed to dep-id-1: it found no "
                           r"DAG file and canceled the deploy",
    ),
    "invalid workspace id, exit 0": (
        'print("Invalid workspace id ws-id-1 was provided through the --workspace-id flag")',
        AstroDeployFailed, r"nothing was deployed to dep-id-1: the workspaceId configured for ws/dep does not own "
                           r"Astro deployment dep-id-1: fix astroDeployments in cdk.json",
    ),
    "success line but a failing exit code": (
        SUCCESS + "\nsys.exit(1)", AstroDeployFailed, r"astro deploy exited 1 without deploying to dep-id-1",
    ),
    "expired token, exit 1": (
        'print("Error: API Token is expired", file=sys.stderr); sys.exit(1)',
        AstroDeployFailed, r"the Astro API token is invalid or expired: put a valid Deployment or Workspace API "
                           r"token in the secret arn:aws:secretsmanager:",
    ),
    "malformed token, exit 1": (
        'print("Error: API Token is invalid or malformed", file=sys.stderr); sys.exit(1)',
        AstroDeployFailed, r"the Astro API token is invalid or expired",
    ),
    "DAG-only deploys disabled, exit 1": (
        "print(\"Error: DAG-only deploys are not enabled for this Deployment. Run 'astro deployment update "
        "dep-id-1 --dag-deploy enable' to enable DAG-only deploys\", file=sys.stderr); sys.exit(1)",
        AstroDeployFailed, r"DAG-only deploys are disabled on Astro deployment dep-id-1: enable them",
    ),
    "unwritable home, exit 1": (
        'print("Error creating default config in home dir: mkdir /home/sbx_user1051: read-only file system")\n'
        'print("Error: failed to find a valid workspace", file=sys.stderr); sys.exit(1)',
        AstroDeployFailed, r"the astro CLI could not write its home folder",
    ),
    "an error that says nothing about the network": (
        'print("Error: something unexpected", file=sys.stderr); sys.exit(2)',
        AstroDeployFailed, r"astro deploy exited 2 without deploying to dep-id-1",
    ),
    "503 from Astro": (
        'print("Error: failed to create deploy: 503 Service Unavailable", file=sys.stderr); sys.exit(1)',
        AstroUnavailable, r"on a network or server error talking to Astro",
    ),
    "network error": (
        'print("Error: Post \\"https://api.astronomer.io/v1\\": dial tcp: lookup api.astronomer.io: i/o timeout",'
        " file=sys.stderr); sys.exit(1)",
        AstroUnavailable, r"on a network or server error talking to Astro",
    ),
}


@dataclass
class FakeLambdaContext:
    """What powertools and the deploy step read from Lambda's context object."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def emitted_metrics(output: str, **dimensions: str) -> dict[str, float]:
    """The EMF metrics printed in `output` whose documents carry the given dimension values."""
    metrics = {}
    for line in output.splitlines():
        if not (line.startswith("{") and '"_aws"' in line):
            continue
        document = json.loads(line)
        if any(document.get(name) != value for name, value in dimensions.items()):
            continue
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = document[definition["Name"]]
            metrics[definition["Name"]] = value[0] if isinstance(value, list) else value
    return metrics


def fake_astro(folder: Path, behaviour: str) -> Path:
    """An `astro` executable in `folder` that runs the given Python (os and sys imported)."""
    script = folder / "astro"
    script.write_text(f"#!{sys.executable}\nimport os, sys\n{behaviour}\n")
    script.chmod(0o755)
    return script


def deploy_example(world: LocalWorld, repo: str = "marketing_etl", expect: str = "FAILED",
                   workspace: str = "analytics", deployment: str = "production") -> ExecutionResult:
    """Deploy one of the example repos (to analytics/production by default) through the local world; return how it
    ended."""
    scenario = Scenario.from_document(
        {"requests": [{"astroWorkspace": workspace, "astroDeployment": deployment, "repo": repo,
                       "dags_dir": repo, "expect": expect}]},
        EXAMPLES_DIR,
    )
    [outcome] = run_scenario(world, scenario)
    return outcome.result


def install_probe_module(monkeypatch, folder: Path, module: str, source: str) -> None:
    """A handler module that moto's in-process Lambdas import by name, and the credentials boto3 wants there."""
    (folder / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def placeholder_zip() -> bytes:
    """The code of a Lambda function whose handler runs in process: CreateFunction wants a zip all the same."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("unused.txt", "")
    return buffer.getvalue()


def recovery_arn(world: LocalWorld, name: str) -> str:
    [state_machine] = [arn for arn in world.state_machine_arns.values() if arn != world.state_machine_arn]
    return f"{state_machine.replace(':stateMachine:', ':execution:')}:{name}"


def wait_until_ended(world: LocalWorld, arn: str, timeout: float = 180) -> dict:
    sfn = world.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            description = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            description = {"status": "RUNNING"}  # a recovery not started yet
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.2)
    raise AssertionError(f"{arn} still running after {timeout} s")


def wait_until_asleep(world: LocalWorld, arn: str, state: str = "WaitForLock", timeout: float = 60) -> None:
    """Until the execution sleeps in the callback task `state`, its token recorded (the invocation has returned):
    WaitForLock's in the lock's item, DeferShip's in the deployment's ships item."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = None
        for event in execution_history(world, arn):
            current = event.get("stateEnteredEventDetails", {}).get("name", current)
            if event["type"] == "TaskSubmitted" and current == state:
                return
        time.sleep(0.05)
    raise AssertionError(f"{arn} never slept in {state}")


def start_behind_a_held_deploy(world: LocalWorld, scenario: Scenario,
                               asleep_in: str | Sequence[str | None] = "WaitForLock") -> list[str]:
    """Inside `world.hold_deploys()`: start the scenario's requests in order, the first one's deploy held, each
    later one asleep before the next starts (`asleep_in`: the callback state each sleeps in, one for all or one per
    later request; None: it ends instead); return their ARNs. They overlap whatever the machine's load, and wait
    in the order they came.

    Behind a ship of the main bundle (the lock handed over to it), an execution of another repo changes its repo
    and defers its ship ("DeferShip"); one whose repo the ship carries waits for its end ("WaitForLock"). Behind a
    ship of a per-repo bundle, which keeps the lock, every one waits for the lock."""
    s3 = world.client("s3")
    later = [asleep_in] * (len(scenario.requests) - 1) if isinstance(asleep_in, str) else list(asleep_in)
    arns = []
    for request in scenario.requests:
        run_id = world.next_run_id()
        execution_input = upload_dags_dir(s3, world.artifacts_bucket, request, run_id)
        arns.append(world.start_execution(execution_input, execution_name(request.repo, None, run_id)))
        if len(arns) == 1:
            world.wait_for_held_deploys(1)
        elif later[len(arns) - 2] is None:
            wait_until_ended(world, arns[-1])
        else:
            wait_until_asleep(world, arns[-1], later[len(arns) - 2])
    return arns


def execution_output(world: LocalWorld, arn: str) -> dict:
    """A SUCCEEDED execution's output: its state at the end."""
    return json.loads(world.client("stepfunctions").describe_execution(executionArn=arn)["output"])


def lock_items(world: LocalWorld) -> list[dict]:
    """What the lock table holds that matters: the locks held, and the deployments' ships items that still name a
    deferred change or an outcome to tell (an empty ships item is just a key)."""
    items = world.client("dynamodb").scan(TableName=world.environment["LOCK_TABLE"])["Items"]
    return [item for item in items if set(item) != {"lock_key"}]


def lock_items_once_told(world: LocalWorld, timeout: float = 15.0) -> list[dict]:
    """`lock_items` once the waker has delivered what the last ship told (it runs on the lock's release, through
    the stream: after the executions have ended)."""
    deadline = time.monotonic() + timeout
    items = lock_items(world)
    while items and time.monotonic() < deadline:
        time.sleep(0.1)
        items = lock_items(world)
    return items
