"""The ways an execution of the deploy state machine ends without running its failure path (Rollback, Release lock
after failure, Notify), which the recovery state machine then does in its place (cdk/recovery.py).

- A stop (ABORTED) or the execution's timeout (TIMED_OUT): Step Functions runs no state after either.
- A terminal error: `States.DataLimitExceeded` (a state's input or output over 256 KiB) and `States.Runtime` fail
  the execution at once; no Catch can catch them, `States.ALL` included.
"""

from datetime import timedelta

STOPPED_STATUSES = ("ABORTED", "TIMED_OUT")
FAILED_STATUS = "FAILED"
UNCATCHABLE_ERRORS = ("States.DataLimitExceeded", "States.Runtime")
# How far back the sweep looks for ended executions without a recovery: one the events and many sweeps all missed
# needs a person.
RECOVERY_LOOKBACK = timedelta(days=2)
# Notify remembers each execution it notified for longer than the latest recovery that may notify it again.
NOTIFIED_RECORD_LIFETIME = RECOVERY_LOOKBACK + timedelta(days=1)


def ended_without_failure_path(status: str, error: str | None) -> bool:
    return status in STOPPED_STATUSES or (status == FAILED_STATUS and error in UNCATCHABLE_ERRORS)
