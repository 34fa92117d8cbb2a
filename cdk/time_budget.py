"""The longest an execution can run before it reaches its end on its own, checked against its timeout.

An execution that outlives `executionTimeoutMinutes` ends TIMED_OUT and is recovered by the recovery state machine
(cdk/recovery.py), outside its own. So that a slow run ends in the machine's own failure path instead, the worst case must fit: every step
running each of its attempts to its task timeout, every retry taken with its longest interval, the longest wait
for the lock, a ship of another execution's deferred change first, its own ship deferred and never told, the
longest wait for the lock again, its Deploy meeting another ship in flight and deferring once more, untold, the
longest wait for the lock a third time, then a failure at the end of Deploy's last attempt, rolled back, the lock
released and notified.
The figures are the ones the constructs are built from (cdk/functions.py, cdk/state_machine.py).
"""

from dataclasses import dataclass

from aws_cdk import Duration

from cdk.config import SettingsError, StackSettings
from cdk.functions import CLEAR_PREFIX, COMPARE, LOCK, NOTIFY, PARSE, RECOVER, ROLLBACK, SNAPSHOT, UPLOAD, ZipStep
from cdk.state_machine import (
    DYNAMODB_TASK_TIMEOUT, DYNAMODB_TRANSIENT, LAMBDA_RETRIES, RetryPolicy,
    defer_window_seconds, lambda_task_timeout_seconds,
)
from functions.shared.locking import MAX_WAIT_SECONDS


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float


def task_worst_case(task_timeout_seconds: float, retries: tuple[RetryPolicy, ...]) -> float:
    """Every attempt that may run long runs to the timeout; every retry waits its longest interval."""
    attempts = 1 + sum(policy.max_attempts for policy in retries if policy.late)
    return attempts * task_timeout_seconds + sum(sum(policy.longest_waits()) for policy in retries)


def lambda_step(name: str, timeout: Duration, extra: tuple[RetryPolicy, ...] = ()) -> Phase:
    return Phase(name, task_worst_case(lambda_task_timeout_seconds(timeout.to_seconds()), LAMBDA_RETRIES + extra))


def _timeout(step: ZipStep, settings: StackSettings) -> Duration:
    return Duration.seconds(settings.step_timeout_seconds(step.construct_id))


def worst_case(settings: StackSettings) -> list[Phase]:
    """The phases of the longest execution, in order."""
    acquire_lock = lambda_step("AcquireLock", _timeout(LOCK, settings))
    # The first AcquireLock starts the clock of the wait; while waiting, the last WaitForLock may start just before
    # the wait runs out, and one more AcquireLock follows it. WaitForLock is never retried: its timeout, at most
    # MAX_WAIT_SECONDS, bounds it.
    lock_wait = 2 * acquire_lock.seconds + settings.lock_max_wait_minutes * 60 + MAX_WAIT_SECONDS
    return [
        lambda_step("Parse", _timeout(PARSE, settings)),
        Phase("AcquireLock / WaitForLock", lock_wait),
        _deploy(settings, "ShipDeferredChanges"),
        lambda_step("CompareWithLive", COMPARE.timeout),
        lambda_step("Snapshot", _timeout(SNAPSHOT, settings)),
        lambda_step("ClearPrefix", _timeout(CLEAR_PREFIX, settings)),
        lambda_step("Upload", _timeout(UPLOAD, settings)),
        lambda_step("ShipOrDefer", _timeout(LOCK, settings)),
        # Deferred, then never told: the wait runs out, and the lock is waited for again (a wait of its own).
        Phase("DeferShip", defer_window_seconds(settings.deploy_timeout_seconds)),
        Phase("AcquireLock / WaitForLock again", lock_wait),
        # Its Deploy meets another execution's ship in flight (at once: nothing is gathered) and defers again, and
        # is not told again: a third wait for the lock.
        Phase("DeferShip again (a ship in flight)", defer_window_seconds(settings.deploy_timeout_seconds)),
        Phase("AcquireLock / WaitForLock a third time", lock_wait),
        _deploy(settings),
        lambda_step("Rollback", _timeout(ROLLBACK, settings)),
        _release_lock(),
        lambda_step("Notify", _timeout(NOTIFY, settings)),
    ]


def _deploy(settings: StackSettings, name: str = "Deploy") -> Phase:
    # Deploy tries a deploy that failed on a transient Astro error again itself, within its timeout.
    return lambda_step(name, Duration.seconds(settings.deploy_timeout_seconds))


def _release_lock(name: str = "Release lock after failure") -> Phase:
    return Phase(name, task_worst_case(DYNAMODB_TASK_TIMEOUT.to_seconds(), (DYNAMODB_TRANSIENT,)))


def recovery_worst_case(settings: StackSettings) -> list[Phase]:
    """The phases of the longest recovery (cdk/recovery.py): the wait for the stopped execution's invocation in
    flight (scheduled at the latest when the execution ended, its start may lag a few seconds behind), the
    restore, the re-ship of the restored bundle, the lock release and the notification. The recovery state
    machine's timeout is their sum: a recovery never times out before it has had every chance to finish."""
    return [
        # functions/sweeper/recovery_start.py adds a clock margin to the invocation's longest run.
        Phase("Wait for in-flight invocations", settings.longest_invocation_seconds + 60),
        lambda_step("Recover", _timeout(RECOVER, settings)),
        _deploy(settings, "Re-ship restored bundle"),
        _release_lock("Release lock"),
        lambda_step("Notify", _timeout(NOTIFY, settings)),
    ]


def worst_case_seconds(settings: StackSettings) -> float:
    return sum(phase.seconds for phase in worst_case(settings))


def check_time_budget(settings: StackSettings) -> None:
    """Fail synthesis when the worst case does not fit the execution timeout, naming the figures."""
    phases = worst_case(settings)
    needed = sum(phase.seconds for phase in phases)
    if needed <= settings.execution_timeout_minutes * 60:
        return
    breakdown = ", ".join(f"{phase.name} {phase.seconds:.0f} s" for phase in phases)
    raise SettingsError([
        f"executionTimeoutMinutes: {settings.execution_timeout_minutes} minutes is shorter than the worst case of "
        f"one execution, {needed:.0f} s ({breakdown}): raise executionTimeoutMinutes to at least "
        f"{-(-needed // 60):.0f}, or lower lockMaxWaitMinutes ({settings.lock_max_wait_minutes}) or "
        f"deployTimeoutSeconds ({settings.deploy_timeout_seconds})"
    ])
