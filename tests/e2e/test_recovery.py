"""Stopped and timed-out executions, end to end on the local mode, as AWS runs them: the execution ends at once,
the Lambda invocation it had in flight runs on to its end, EventBridge's status event (best effort) starts the
recovery.

The invariant, after an execution ended and its recovery ran: the bundle Astro last received equals the
deployment's S3 content; each repo prefix is wholly one commit (the old or the new); the lock is free; exactly one
notification went out.

Each step's invocation is held in flight (a gate in its S3 calls, or the stand-in's held deploy) until the recovery
is waiting for it, then let go: a recovery that did not wait would restore before the invocation's last writes.
"""

import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from local_mode.executions import watch_execution
from local_mode.world import LocalWorld
from testkit import SHORT_FUNCTION_TIMEOUTS, recovery_arn, wait_until_ended

from cdk.recovery import WAIT_STATE
from functions.shared.paths import restore_point_key

WORKSPACE = "analytics"
REPO = "marketing_etl"
NEIGHBOUR = "finance_reports/monthly_close.py"
OLD = {"campaign_performance.py": b"from airflow import DAG\nDAG('campaign_performance')\n# old\n",
       "include/helpers.py": b"VERSION = 'old'\n", "sql/old_report.sql": b"select 'old'"}
NEW = {"campaign_performance.py": b"from airflow import DAG\nDAG('campaign_performance')\n# new\n",
       "include/helpers.py": b"VERSION = 'new'\n", **{f"sql/report_{n}.sql": b"select 'new'" for n in range(6)}}
STEPS = ("Snapshot", "ClearPrefix", "Upload", "Deploy")
ENDS = ("stop", "timeout")


def has_entered(world: LocalWorld, arn: str, state: str) -> bool:
    sfn = world.client("stepfunctions")
    try:
        events = sfn.get_execution_history(executionArn=arn)["events"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return False  # a recovery not started yet
    return any(event.get("stateEnteredEventDetails", {}).get("name") == state for event in events)


class Gate:
    """Holds the calls it is placed in until opened; waits by polling, so that a function timeout can still stop
    the handler's thread."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()

    def hold(self) -> None:
        self.reached.set()
        while not self.opened.is_set():
            time.sleep(0.02)


@dataclass
class Case:
    step: str
    end: str
    gate: Gate = field(default_factory=Gate)
    arn: str = ""
    copies: int = 0
    released_at: float = 0.0

    @property
    def deployment(self) -> str:
        return f"{self.end}-{self.step.lower()}"

    @property
    def name(self) -> str:
        return f"new-{self.deployment}"

    @property
    def prefix(self) -> str:
        return f"dags/{WORKSPACE}/{self.deployment}/"

    def request(self, world: LocalWorld, folder: str) -> dict:
        return {"astroWorkspace": WORKSPACE, "astroDeployment": self.deployment, "repo": REPO,
                "body": {"source_prefix": f"s3://{world.artifacts_bucket}/{folder}/{self.deployment}/"}}


def place_gates(world: LocalWorld, cases: list[Case]) -> None:
    """Each case's step holds in its S3 calls (after some of its work for ClearPrefix and Upload)."""
    by_step = {case.step: [c for c in cases if c.step == case.step] for case in cases}

    def in_gate(step: str, matches: Callable[[Case, dict], bool]):
        def hook(params, **_):
            for case in by_step.get(step, []):
                if not case.gate.opened.is_set() and matches(case, params):
                    case.gate.hold()

        return hook

    def third_copy(case: Case, params: dict) -> bool:
        if params.get("CopySource", {}).get("Bucket") != world.artifacts_bucket or not params["Key"].startswith(
                case.prefix):
            return False
        case.copies += 1
        return case.copies == 3

    events = world.client("s3").meta.events
    events.register("provide-client-params.s3.PutObject", in_gate(
        "Snapshot", lambda case, params: params["Key"] == restore_point_key(case.name)))
    events.register("provide-client-params.s3.DeleteObjects", in_gate(
        "ClearPrefix", lambda case, params: params["Delete"]["Objects"][0]["Key"].startswith(case.prefix)))
    events.register("provide-client-params.s3.CopyObject", in_gate("Upload", third_copy))


def put_files(world: LocalWorld, folder: str, deployment: str, files: dict[str, bytes]) -> None:
    for path, body in files.items():
        world.client("s3").put_object(Bucket=world.artifacts_bucket, Key=f"{folder}/{deployment}/{path}", Body=body)


def prefix_contents(world: LocalWorld, prefix: str) -> dict[str, bytes]:
    s3 = world.client("s3")
    return {key.removeprefix(prefix): s3.get_object(Bucket=world.dag_bucket, Key=key)["Body"].read()
            for key in world.dag_keys(prefix)}


def astro_contents(world: LocalWorld, deployment: str) -> dict[str, bytes]:
    """What the stand-in last received in the deployment's main bundle."""
    folder = world.astro_state_dir / f"local-{deployment}" / "bundles" / "main"
    return {path: (folder / path).read_bytes() for path in world.astro_bundles().get(f"local-{deployment}", [])}


def entered_at(world: LocalWorld, arn: str, state: str) -> float:
    events = world.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    [moment] = [event["timestamp"].timestamp() for event in events
                if event.get("stateEnteredEventDetails", {}).get("name") == state]
    return moment


def lock_holders(world: LocalWorld) -> dict[str, str]:
    items = world.client("dynamodb").scan(TableName=world.environment["LOCK_TABLE"])["Items"]
    return {item["lock_key"]["S"]: item["holder"]["S"] for item in items}


def deploy_old_commit(world: LocalWorld, cases: list[Case]) -> None:
    """Every deployment as an earlier deploy left it: S3 and Astro hold the old commit and a neighbour repo."""
    arns = []
    for case in cases:
        put_files(world, "old", case.deployment, OLD)
        put_files(world, "new", case.deployment, NEW)
        world.client("s3").put_object(Bucket=world.dag_bucket, Key=case.prefix + NEIGHBOUR,
                                      Body=b"from airflow import DAG\nDAG('monthly_close')\n")
        arns.append(world.start_execution(case.request(world, "old"), f"old-{case.deployment}"))
    results = [watch_execution(world, arn) for arn in arns]
    assert [(result.status, result.error, result.cause) for result in results if result.status != "SUCCEEDED"] == []
    # Their status events are sent too (the local EventBridge polls): none of them is left for a test to lose.
    for arn in arns:
        world.event_deliveries(arn)


def end_execution(world: LocalWorld, case: Case) -> None:
    if case.end == "stop":
        world.client("stepfunctions").stop_execution(executionArn=case.arn, cause="operator stopped it")
    else:
        world.time_out_execution(case.arn)


def in_flight(world: LocalWorld, case: Case) -> bool:
    """Whether the case's step is running (held at its gate, or Deploy's CLI held by the stand-in)."""
    if case.step != "Deploy":
        return case.gate.reached.is_set()
    events = world.client("stepfunctions").get_execution_history(executionArn=case.arn)["events"]
    entered = [index for index, event in enumerate(events)
               if event.get("stateEnteredEventDetails", {}).get("name") == "Deploy"]
    return bool(entered) and any(event["type"] == "LambdaFunctionStarted" for event in events[entered[0]:])


def invariant_problems(world: LocalWorld, case: Case) -> list[str]:
    problems = []
    recovery = wait_until_ended(world, recovery_arn(world, case.name))
    if recovery["status"] != "SUCCEEDED":
        return [f"recovery {recovery['status']}: {recovery.get('error')} {recovery.get('cause')}"]
    # It waited for the invocation in flight: the restore began only after that invocation was let go.
    if case.step in STEPS and entered_at(world, recovery["executionArn"], "Recover") < case.released_at:
        problems.append("Recover ran before the invocation in flight had ended")
    s3_now = prefix_contents(world, case.prefix)
    repo = {path.removeprefix(f"{REPO}/"): body for path, body in s3_now.items() if path.startswith(f"{REPO}/")}
    if repo not in (OLD, NEW):
        problems.append(f"{REPO} holds a mix of commits: {sorted(repo)}")
    if astro_contents(world, case.deployment) != s3_now:
        problems.append(f"Astro last received {sorted(astro_contents(world, case.deployment))}, S3 holds "
                        f"{sorted(s3_now)}")
    if f"{WORKSPACE}/{case.deployment}" in lock_holders(world):
        problems.append(f"the lock is still held by {lock_holders(world)[f'{WORKSPACE}/{case.deployment}']}")
    notified = [n for n in world.notifications() if f"Execution: {case.name}\n" in n.message]
    if len(notified) != 1:
        problems.append(f"{len(notified)} notifications instead of one")
    return problems


def test_stopped_and_timed_out_executions_end_with_the_invariant_whatever_the_step_in_flight(tmp_path):
    cases = [Case(step, end) for step in STEPS for end in ENDS]
    with LocalWorld(tmp_path / "out", context_overrides=SHORT_FUNCTION_TIMEOUTS) as world:
        deploy_old_commit(world, cases)
        place_gates(world, cases)
        with ExitStack() as deploys_held:
            deploys_held.enter_context(world.hold_deploys())
            for case in cases:
                case.arn = world.start_execution(case.request(world, "new"), case.name)
            # Each execution is ended as soon as its step is in flight, and its step let go once the recovery is
            # waiting for it (within the step's function timeout: the function must not time out first).
            running, ended, deadline = list(cases), [], time.monotonic() + 120
            while (running or ended) and time.monotonic() < deadline:
                for case in [case for case in running if in_flight(world, case)]:
                    end_execution(world, case)
                    status = world.client("stepfunctions").describe_execution(executionArn=case.arn)["status"]
                    assert status == {"stop": "ABORTED", "timeout": "TIMED_OUT"}[case.end]
                    running.remove(case)
                    ended.append(case)
                # The recovery started at once and waits, the invocation still held in flight.
                for case in [case for case in ended if has_entered(world, recovery_arn(world, case.name), WAIT_STATE)]:
                    ended.remove(case)
                    case.released_at = time.time()
                    case.gate.opened.set()
                if not any(case.step == "Deploy" for case in running + ended):
                    deploys_held.close()
                time.sleep(0.05)
            assert running + ended == [], f"not recovered in time: {[case.name for case in running + ended]}"

        problems = {case.name: invariant_problems(world, case) for case in cases}

    assert {name: found for name, found in problems.items() if found} == {}


def test_a_stop_while_the_ship_uploads_without_the_lock_is_restored_under_the_ship_slot_and_re_shipped(tmp_path):
    # Deploy handed the lock over to its ship; the execution is stopped, and its CLI, held, is cut off at its
    # timeout (the function's 40 s less 30 s): the ship failed, and only the ship slot fences the repo. The recovery
    # restores under it, takes the lock back, re-ships the old commit and ends the slot.
    case = Case("Deploy", "stop")
    with LocalWorld(tmp_path / "out", context_overrides=SHORT_FUNCTION_TIMEOUTS) as world:
        deploy_old_commit(world, [case])
        recovery = recovery_arn(world, case.name)
        with world.hold_deploys():
            case.arn = world.start_execution(case.request(world, "new"), case.name)
            world.wait_for_held_deploys(1)
            assert lock_holders(world) == {f"shipping#{WORKSPACE}/{case.deployment}": case.name}
            end_execution(world, case)
            # Let go only once Recover has begun, after the invocation has ended (the re-ship is not to be held).
            deadline = time.monotonic() + 120
            while not has_entered(world, recovery, "Recover") and time.monotonic() < deadline:
                time.sleep(0.1)

        assert invariant_problems(world, case) == []
        assert prefix_contents(world, case.prefix) == {**{f"{REPO}/{path}": body for path, body in OLD.items()},
                                                       NEIGHBOUR: b"from airflow import DAG\nDAG('monthly_close')\n"}
        output = json.loads(world.client("stepfunctions").describe_execution(executionArn=recovery)["output"])
        assert output["rollback"]["status"] == "restored" and output["deploy"]["version"]
        assert lock_holders(world) == {}


def test_a_lost_status_event_is_recovered_by_the_sweep_which_also_frees_stale_leases(tmp_path):
    case = Case("Upload", "stop")
    with LocalWorld(tmp_path / "out", context_overrides=SHORT_FUNCTION_TIMEOUTS) as world:
        deploy_old_commit(world, [case])
        place_gates(world, [case])
        with world.lose_status_events() as lost:
            case.arn = world.start_execution(case.request(world, "new"), case.name)
            assert case.gate.reached.wait(60)
            end_execution(world, case)
            case.released_at = time.time()
            case.gate.opened.set()
            deadline = time.monotonic() + 10
            while not lost and time.monotonic() < deadline:
                time.sleep(0.05)
        assert [event["detail"]["name"] for event in lost] == [case.name]
        assert lock_holders(world) == {f"{WORKSPACE}/{case.deployment}": case.name}
        # Leases left by an execution that ended in its own path, and nothing else will free: a lock, and the ship
        # slot its Deploy handed a lock over to.
        for key in (f"{WORKSPACE}/other", f"shipping#{WORKSPACE}/other"):
            world.client("dynamodb").put_item(
                TableName=world.environment["LOCK_TABLE"],
                Item={"lock_key": {"S": key}, "holder": {"S": f"old-{case.deployment}"},
                      "acquired_at": {"N": "0"}, "expires_at": {"N": str(int(time.time()) + 3600)}})

        [report] = world.run_schedules()

        assert report["recoveries_started"] == [case.name]
        assert sorted(report["locks_freed"]) == [f"{WORKSPACE}/other", f"shipping#{WORKSPACE}/other"]
        assert invariant_problems(world, case) == []
        # A second sweep finds nothing left to do: the recovery is not started twice.
        assert world.run_schedules() == [{"recoveries_started": [], "locks_freed": []}]
        assert len([n for n in world.notifications() if case.name in n.message]) == 1


def test_executions_ended_before_parse_finished_are_reported_without_restoring(tmp_path):
    cases = [Case("Parse", end) for end in ENDS]
    with LocalWorld(tmp_path / "out", context_overrides=SHORT_FUNCTION_TIMEOUTS) as world:
        parse_reached, release = threading.Barrier(len(cases) + 1, timeout=60), threading.Event()

        def hold_parse(params, **_):
            if params.get("Bucket") == world.artifacts_bucket and not release.is_set():
                parse_reached.wait()
                while not release.is_set():
                    time.sleep(0.02)

        world.client("s3").meta.events.register("provide-client-params.s3.ListObjectsV2", hold_parse)
        for case in cases:
            put_files(world, "new", case.deployment, NEW)
            case.arn = world.start_execution(case.request(world, "new"), case.name)
        parse_reached.wait()
        for case in cases:
            end_execution(world, case)
        release.set()

        recoveries = [wait_until_ended(world, recovery_arn(world, case.name)) for case in cases]

        assert [recovery["status"] for recovery in recoveries] == ["SUCCEEDED", "SUCCEEDED"]
        notifications = sorted(world.notifications(), key=lambda notification: notification.subject)
        assert [notification.subject.rsplit(" at ", 1)[1] for notification in notifications] == [
            "execution ABORTED", "execution TIMED_OUT"]
        assert all("Nothing was changed" in notification.message for notification in notifications)
        assert lock_holders(world) == {}


def test_an_execution_stopped_while_its_failure_was_being_notified_is_notified_once(tmp_path):
    name = "refused-then-stopped"
    published, release = threading.Event(), threading.Event()

    def hold_first_publish(params, **_):
        # The failure path's Notify, held in its publish (after it recorded the execution as being notified).
        if f"Execution: {name}\n" in params["Message"] and not release.is_set():
            published.set()
            while not release.is_set():
                time.sleep(0.02)

    with LocalWorld(tmp_path / "out", context_overrides={"stepTimeoutsSeconds": {"Notify": 12}}) as world:
        world.client("sns").meta.events.register("provide-client-params.sns.Publish", hold_first_publish)
        arn = world.start_execution({"astroWorkspace": WORKSPACE, "astroDeployment": "refused", "repo": REPO,
                                     "body": {"dags": [{"dag_id": "x", "dag_file": "s3://not-allowed/x.py"}]}}, name)
        assert published.wait(60)
        world.client("stepfunctions").stop_execution(executionArn=arn, cause="operator stopped it")
        deadline = time.monotonic() + 60
        while not has_entered(world, recovery_arn(world, name), WAIT_STATE) and time.monotonic() < deadline:
            time.sleep(0.05)
        release.set()

        recovery = wait_until_ended(world, recovery_arn(world, name))
        notified = [note for note in world.notifications() if f"Execution: {name}\n" in note.message]

    assert recovery["status"] == "SUCCEEDED"
    # The one the failure path sent, naming what failed; the recovery found it sent.
    assert [note.subject.rsplit(" at ", 1)[1] for note in notified] == ["Parse"]
