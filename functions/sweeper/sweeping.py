"""The sweep: what EventBridge's best-effort delivery or a crash may have left behind, found on a schedule.

- Executions that ended without their failure path (stopped, timed out, or failed with a terminal error:
  functions/shared/execution_ends.py) and have no recovery (their status event never arrived, or its delivery
  failed) get one, as the event would have started it. Each FAILED execution of the lookback is described once a
  sweep: only DescribeExecution says which error ended it.
- Leases held by executions that are no longer running, and whose recovery (if they need one) has ended, are
  freed, each only if that execution still holds it.
"""

from dataclasses import field
from datetime import datetime

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.execution_ends import (
    FAILED_STATUS, RECOVERY_LOOKBACK, STOPPED_STATUSES, ended_without_failure_path,
)
from functions.shared.locking import release
from functions.shared.records import Record
from functions.sweeper.recovery_start import RecoverySettings, start_recovery


class SweepReport(Record):
    recoveries_started: list[str] = field(default_factory=list)
    locks_freed: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"recoveries_started": self.recoveries_started, "locks_freed": self.locks_freed}


def _executions(state_machine_arn: str, status: str | None = None) -> list[dict]:
    arguments = {"stateMachineArn": state_machine_arn, **({"statusFilter": status} if status else {})}
    executions = []
    for page in client("stepfunctions").get_paginator("list_executions").paginate(**arguments):
        executions += page["executions"]
    return executions


def _description(execution_arn: str) -> dict | None:
    try:
        return client("stepfunctions").describe_execution(executionArn=execution_arn)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return None
        raise


def _needs_recovery(execution: dict) -> bool:
    if execution["status"] != FAILED_STATUS:
        return True
    description = _description(execution["executionArn"])
    return description is not None and ended_without_failure_path(FAILED_STATUS, description.get("error"))


def recover_missed(settings: RecoverySettings, now: datetime) -> list[str]:
    recovered = {execution["name"] for execution in _executions(settings.recovery_arn)}
    started = []
    for status in (*STOPPED_STATUSES, FAILED_STATUS):
        for execution in _executions(settings.pipeline_arn, status):
            if execution["name"] in recovered or execution.get("stopDate", now) < now - RECOVERY_LOOKBACK:
                continue
            if _needs_recovery(execution) and start_recovery(execution["executionArn"], settings):
                started.append(execution["name"])
    return started


def lease_is_stale(holder: str, settings: RecoverySettings) -> bool:
    """Whether nothing will release the holder's lease: it has ended, and so has its recovery if it needs one."""
    description = _description(settings.execution_arn(settings.pipeline_arn, holder))
    if description is None or description["status"] == "RUNNING":
        # Not one of this machine's executions (its lease runs out by itself), or still at work.
        return False
    if ended_without_failure_path(description["status"], description.get("error")):
        recovery = _description(settings.execution_arn(settings.recovery_arn, holder))
        return recovery is not None and recovery["status"] != "RUNNING"
    return True


def free_stale_leases(table: str, settings: RecoverySettings) -> list[str]:
    freed = []
    for page in client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            key, holder = item["lock_key"]["S"], item.get("holder", {}).get("S")
            if holder and lease_is_stale(holder, settings) and release(table, key, holder):
                freed.append(key)
    return freed


def sweep(table: str, settings: RecoverySettings, now: datetime) -> SweepReport:
    report = SweepReport(recoveries_started=recover_missed(settings, now))
    report.locks_freed = free_stale_leases(table, settings)
    return report
