"""The state machine's definition, read back from the template as Step Functions will see it."""

import json

import pytest
from aws_cdk.assertions import Capture, Match

# In pipeline order; the status API and the local mode know the states by these names.
STEPS = ["Parse", "AcquireLock", "CompareWithLive", "Snapshot", "ClearPrefix", "Upload", "Deploy"]
ROLLED_BACK = ["Snapshot", "ClearPrefix", "Upload", "Deploy"]
LAMBDA_TASKS = [*STEPS, "DryRun", "Rollback", "Notify"]
LOCK_RELEASES = ["ReleaseLock", "Release lock after failure", "Release lock (unchanged)"]
HANDLERS = {
    "Parse": "functions.parse.app.handler",
    "DryRun": "functions.dry_run.app.handler",
    "AcquireLock": "functions.acquire_lock.app.handler",
    "CompareWithLive": "functions.compare.app.handler",
    "Snapshot": "functions.snapshot.app.handler",
    "ClearPrefix": "functions.clear_prefix.app.handler",
    "Upload": "functions.upload.app.handler",
    "Deploy": "functions.deploy.app.handler",
    "Rollback": "functions.rollback.app.handler",
    "Notify": "functions.notify.app.handler",
}
RESULT_PATHS = {
    "Parse": "$",
    "DryRun": "$.dry_run_report",
    "AcquireLock": "$.lock",
    "CompareWithLive": "$.live",
    "Snapshot": "$.restore_point",
    "ClearPrefix": "$.clear",
    "Upload": "$.upload",
    "Deploy": "$.deploy",
    "Rollback": "$.rollback",
}
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
}
# As the Retry lists them.
LAMBDA_ORDER = ["Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                "Lambda.SdkClientException", "Lambda.ClientExecutionTimeoutException"]
DYNAMODB_TRANSIENT = {
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.InternalServerError",
}
# Errors that say the request, the configuration or the lock's owner is wrong: retrying cannot help.
PERMANENT_ERRORS = {
    "InvalidRequest",
    "AstroDeployFailed",
    "AstroConfigError",
    "EmptyBundleRefused",
    "ClearPrefixFailed",
    "UploadFailed",
    "LockWaitExpired",
    "RollbackFailed",
    "DynamoDB.ConditionalCheckFailedException",
    "States.ALL",
    "States.TaskFailed",
    "States.Timeout",
}
RELEASE_PARAMETERS = {
    # Parse's key: known even when AcquireLock failed after taking the lock.
    "Key": {"lock_key": {"S.$": "$.lock_key"}},
    "ConditionExpression": "holder = :me",
    "ExpressionAttributeValues": {":me": {"S.$": "$$.Execution.Name"}},
}


@pytest.fixture(scope="module")
def machine_id(synthesized) -> str:
    return synthesized.output_ref("StateMachineArn")


@pytest.fixture(scope="module")
def definition(synthesized, machine_id) -> dict:
    # The definition is a Fn::Join of text and function ARNs; placeholders stand in for the ARNs.
    definition = Capture()
    synthesized.has(machine_id, "AWS::StepFunctions::StateMachine", {"DefinitionString": definition})
    return json.loads(synthesized.render(definition.as_object()))


@pytest.fixture(scope="module")
def states(definition) -> dict:
    return definition["States"]


def test_the_states_are_exactly_the_pipeline_its_lock_and_its_failure_paths(states):
    assert set(states) == {
        *STEPS,
        *(f"{step} failed" for step in [*STEPS, "DryRun"]),
        "Dry run?",
        "DryRun",
        "Dry run passed?",
        "Dry run passed",
        "Dry run found problems",
        "Lock acquired?",
        "WaitForLock",
        "WaitForLock failed",
        "ShipDeferredChanges",
        "ShipDeferredChanges failed",
        "ShipOrDefer",
        "ShipOrDefer failed",
        "Defer ship?",
        "DeferShip",
        "DeferShip failed",
        "Carried?",
        "Deployed by another ship",
        "Unchanged?",
        "Release lock (unchanged)",
        "Lock release failed (unchanged)",
        "Unchanged",
        "Lock handed over?",
        "ReleaseLock",
        "Lock release failed",
        "Deployed",
        "Rollback",
        "Rollback failed",
        "Ship slot ended?",
        "Release lock after failure",
        "Notify",
        "Failed",
    }


def reachable(states: dict, start: str) -> set[str]:
    """Every state an execution can enter from `start` (branches, Defaults, Nexts and Catches)."""
    seen, pending = set(), [start]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        pending += [choice["Next"] for choice in state.get("Choices", [])]
        pending += [catch["Next"] for catch in state.get("Catch", [])]
        pending += [state[key] for key in ("Next", "Default") if key in state]
    return seen


def walk(definition: dict, states: dict, branches: dict[str, int | None]) -> list[str]:
    """The path from the start, taking at each Choice the branch given (an index in its Choices, None: Default)."""
    path = [definition["StartAt"]]
    while "Next" in states[path[-1]] or states[path[-1]]["Type"] == "Choice":
        state = states[path[-1]]
        if state["Type"] == "Choice":
            branch = branches[path[-1]]
            path.append(state["Default"] if branch is None else state["Choices"][branch]["Next"])
        else:
            path.append(state["Next"])
    return path


def test_the_happy_path_takes_the_lock_compares_runs_the_steps_and_releases_it(definition, states):
    path = walk(definition, states, {"Dry run?": None, "Lock acquired?": 2, "Unchanged?": None, "Defer ship?": None,
                                     "Lock handed over?": None})
    assert path == ["Parse", "Dry run?", "AcquireLock", "Lock acquired?", "CompareWithLive", "Unchanged?",
                    "Snapshot", "ClearPrefix", "Upload", "ShipOrDefer", "Defer ship?", "Deploy", "Lock handed over?",
                    "ReleaseLock", "Deployed"]
    assert states["Deployed"] == {"Type": "Succeed"}


def flag_choice(variable: str, *, then: str, otherwise: str) -> dict:
    """A Choice state that goes to `then` when the boolean at `variable` is true, else to `otherwise`."""
    return {
        "Type": "Choice",
        "Choices": [{"Variable": variable, "BooleanEquals": True, "Next": then}],
        "Default": otherwise,
    }


def test_a_ship_that_handed_the_lock_over_is_deployed_without_releasing_it(definition, states):
    # Deploy released the lock when it handed it over to its ship (functions/shared/ship_slot.py), and ended the
    # ship itself; a per-repo bundle's ship keeps the lock to the end.
    assert states["Lock handed over?"] == flag_choice("$.deploy.lock_handed_over", then="Deployed",
                                                      otherwise="ReleaseLock")


def test_a_deploy_that_meets_another_ship_in_flight_defers_its_ship(states):
    # Nothing is gathered before that ship has ended; the state is kept as it was for DeferShip.
    assert states["Deploy"]["Catch"] == [
        {"ErrorEquals": ["ShipInFlight"], "ResultPath": None, "Next": "DeferShip"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Deploy failed"},
    ]


def test_a_dry_run_goes_from_parse_to_its_report_and_ends_there_changing_nothing(definition, states):
    assert states["Dry run?"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.dry_run", "BooleanEquals": True, "Next": "DryRun"}],
        "Default": "AcquireLock",
    }
    assert states["DryRun"]["Next"] == "Dry run passed?"
    assert states["Dry run passed?"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.dry_run_report.passed", "BooleanEquals": True, "Next": "Dry run passed"}],
        "Default": "Dry run found problems",
    }
    assert states["Dry run passed"] == {"Type": "Succeed"}
    # The problems are the execution's error and cause; no notification (a pull request's check, not an incident).
    assert states["Dry run found problems"] == {
        "Type": "Fail", "ErrorPath": "$.dry_run_report.error", "CausePath": "$.dry_run_report.cause",
    }
    # Nothing that locks, writes or ships can follow a dry run; only a crash of the report is notified.
    assert reachable(states, "DryRun") == {
        "DryRun", "Dry run passed?", "Dry run passed", "Dry run found problems", "DryRun failed", "Notify", "Failed",
    }
    assert walk(definition, states, {"Dry run?": 0, "Dry run passed?": 0}) == [
        "Parse", "Dry run?", "DryRun", "Dry run passed?", "Dry run passed",
    ]


def test_an_unchanged_request_is_found_under_the_lock_and_skips_the_ship_unless_forced(definition, states):
    assert states["Lock acquired?"]["Choices"][2]["Next"] == "CompareWithLive"
    assert states["CompareWithLive"]["Next"] == "Unchanged?"
    assert states["Unchanged?"] == {
        "Type": "Choice",
        "Choices": [{
            "And": [
                {"Variable": "$.live.unchanged", "BooleanEquals": True},
                {"Variable": "$.force", "BooleanEquals": False},
            ],
            "Next": "Release lock (unchanged)",
        }],
        "Default": "Snapshot",
    }
    assert walk(definition, states, {"Dry run?": None, "Lock acquired?": 2, "Unchanged?": 0}) == [
        "Parse", "Dry run?", "AcquireLock", "Lock acquired?", "CompareWithLive", "Unchanged?",
        "Release lock (unchanged)", "Unchanged",
    ]
    assert states["Unchanged"] == {"Type": "Succeed"}
    # The lock is released whatever happens, and nothing of the ship follows.
    assert states["Release lock (unchanged)"]["Catch"] == [
        {"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"], "ResultPath": "$.lock_release",
         "Next": "Unchanged"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.lock_release", "Next": "Lock release failed (unchanged)"},
    ]
    assert reachable(states, "Release lock (unchanged)") == {
        "Release lock (unchanged)", "Lock release failed (unchanged)", "Unchanged",
    }
    # A failed comparison has changed nothing: the lock is released, the failure notified.
    assert states["CompareWithLive failed"] == failure_summary("CompareWithLive", then="Release lock after failure")


def test_a_busy_lock_is_waited_for_as_long_as_acquire_lock_says_then_tried_again(states):
    acquired = {"Variable": "$.lock.acquired", "BooleanEquals": True}
    assert states["Lock acquired?"] == {
        "Type": "Choice",
        "Choices": [
            # A deferred execution back for the lock ships what it changed already.
            {"And": [acquired, {"Variable": "$.ship_or_defer.defer", "IsPresent": True},
                     {"Variable": "$.ship_or_defer.defer", "BooleanEquals": True}], "Next": "Deploy"},
            # Another execution's deferred change to this repo ships before this one changes it.
            {"And": [acquired, {"Variable": "$.lock.flush_first", "BooleanEquals": True}],
             "Next": "ShipDeferredChanges"},
            {**acquired, "Next": "CompareWithLive"},
        ],
        "Default": "WaitForLock",
    }

    # Asleep until the waker sends its task token success (the lock was released), at most AcquireLock's wait.
    wait = states["WaitForLock"]
    assert wait["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert wait["Parameters"]["Payload"] == {"state.$": "$", "task_token.$": "$$.Task.Token"}
    assert wait["TimeoutSecondsPath"] == "$.lock.wait_seconds" and "TimeoutSeconds" not in wait
    assert wait["ResultPath"] is None and wait["Next"] == "AcquireLock"
    # A lost wake-up, or a lock released before the wait began, is no failure: try again.
    # Not retried: Lambda's transient errors lead to AcquireLock as a timeout does (AcquireLock retries them).
    assert "Retry" not in wait
    assert wait["Catch"] == [
        {"ErrorEquals": ["States.Timeout", "LockFree", *sorted(LAMBDA_TRANSIENT, key=LAMBDA_ORDER.index)],
         "ResultPath": None, "Next": "AcquireLock"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "WaitForLock failed"},
    ]
    assert states["WaitForLock failed"] == failure_summary("WaitForLock", then="Release lock after failure")


def test_waiting_for_the_lock_runs_the_lock_function(synthesized, states):
    assert states["WaitForLock"]["Parameters"]["FunctionName"] == \
        f"<{synthesized.function_id(HANDLERS['AcquireLock'])}.Arn>"


def test_each_lambda_task_invokes_its_own_function_directly(synthesized, states):
    for task, handler in HANDLERS.items():
        assert states[task]["Type"] == "Task"
        assert states[task]["Resource"] == f"<{synthesized.function_id(handler)}.Arn>"


def test_payloads_and_result_paths_follow_the_contract(states):
    assert states["Parse"]["Parameters"] == {"request.$": "$", "execution.$": "$$.Execution.Name"}
    for task in [*STEPS[1:], "DryRun", "Rollback"]:
        # No Parameters: the whole state (Parse's plan summary and what was added since) is the payload; on a
        # loop, AcquireLock reads its previous attempt at $.lock.
        assert "Parameters" not in states[task]
    for task, result_path in RESULT_PATHS.items():
        assert states[task]["ResultPath"] == result_path


def test_after_upload_the_holder_ships_or_defers_to_the_executions_waiting(definition, states, synthesized):
    lock_function = f"<{synthesized.function_id(HANDLERS['AcquireLock'])}.Arn>"
    decide = states["ShipOrDefer"]
    assert decide["Resource"] == lock_function and decide["ResultPath"] == "$.ship_or_defer"
    assert decide["Parameters"] == {"action": "ship_or_defer", "state.$": "$"}
    assert decide["Next"] == "Defer ship?"
    assert states["Defer ship?"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.ship_or_defer.defer", "BooleanEquals": True, "Next": "DeferShip"}],
        "Default": "Deploy",
    }
    # Asleep, lock released, until the carrying ship's outcome arrives, at most a Deploy attempt and a minute.
    defer = states["DeferShip"]
    assert defer["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert defer["Parameters"]["FunctionName"] == lock_function
    assert defer["Parameters"]["Payload"] == {"action": "defer", "state.$": "$", "task_token.$": "$$.Task.Token"}
    assert defer["TimeoutSeconds"] == synthesized.context["deployTimeoutSeconds"] + 30 + 60
    assert defer["ResultPath"] == "$.carried" and defer["Next"] == "Carried?"
    assert "Retry" not in defer
    # Not told in time, or unsure whether the lock was released: take the lock and ship.
    assert defer["Catch"] == [
        {"ErrorEquals": ["States.Timeout", *sorted(LAMBDA_TRANSIENT, key=LAMBDA_ORDER.index)],
         "ResultPath": None, "Next": "AcquireLock"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "DeferShip failed"},
    ]
    assert states["Carried?"] == {
        "Type": "Choice",
        "Choices": [{"Variable": "$.carried.shipped", "BooleanEquals": True, "Next": "Deployed by another ship"}],
        "Default": "AcquireLock",
    }
    assert states["Deployed by another ship"] == {"Type": "Succeed"}
    # What changed is rolled back on any failure of the decision or the deferral.
    for state in ("ShipOrDefer", "DeferShip"):
        assert states[f"{state} failed"] == failure_summary(state, then="Rollback")
    assert walk(definition, states, {"Dry run?": None, "Lock acquired?": 2, "Unchanged?": None, "Defer ship?": 0,
                                     "Carried?": 0}) == [
        "Parse", "Dry run?", "AcquireLock", "Lock acquired?", "CompareWithLive", "Unchanged?", "Snapshot",
        "ClearPrefix", "Upload", "ShipOrDefer", "Defer ship?", "DeferShip", "Carried?", "Deployed by another ship",
    ]


def test_a_deferred_change_to_the_repo_ships_before_the_repo_changes_again(synthesized, states):
    flush = states["ShipDeferredChanges"]
    assert flush["Resource"] == f"<{synthesized.function_id(HANDLERS['Deploy'])}.Arn>"
    assert flush["ResultPath"] == "$.flush" and flush["Next"] == "CompareWithLive"
    # The execution goes on under the lock: this ship keeps it.
    assert flush["Parameters"] == {
        **{f"{name}.$": f"$.{name}" for name in
           ("workspace", "deployment", "repo", "commit", "execution", "bundle", "lock_key", "allow_empty_deployment")},
        "keeps_lock": True,
    }
    # Nothing of this execution has changed yet: no rollback.
    assert states["ShipDeferredChanges failed"] == failure_summary("ShipDeferredChanges",
                                                                   then="Release lock after failure")


@pytest.mark.parametrize("state", LOCK_RELEASES)
def test_the_lock_is_released_by_step_functions_only_while_this_execution_holds_it(synthesized, states, state):
    release = states[state]
    assert release["Type"] == "Task"
    assert release["Resource"] == "arn:<AWS::Partition>:states:::dynamodb:deleteItem"
    assert release["Parameters"] == {"TableName": f"<{synthesized.output_ref('LockTableName')}>", **RELEASE_PARAMETERS}
    # The state stays what the steps made it (a person reads it); DeleteItem's answer is dropped.
    assert release["ResultPath"] is None
    # Throttling and DynamoDB's own faults are tried again, with backoff.
    (retry,) = release["Retry"]
    assert set(retry["ErrorEquals"]) == DYNAMODB_TRANSIENT
    assert retry["MaxAttempts"] >= 3 and retry["BackoffRate"] > 1 and retry["IntervalSeconds"] >= 1


def test_after_a_deploy_a_lock_taken_over_or_not_released_still_ends_deployed_and_a_failure_shows(states):
    assert states["ReleaseLock"]["Next"] == "Deployed"
    assert states["ReleaseLock"]["Catch"] == [
        {
            "ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
            "ResultPath": "$.lock_release",
            "Next": "Deployed",
        },
        # Past the retries: the deploy stands; the error stays in the state and the execution passes a state
        # that says so (and that monitoring counts).
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.lock_release", "Next": "Lock release failed"},
    ]
    assert states["Lock release failed"] == {"Type": "Pass", "Next": "Deployed"}


def failure_summary(step: str, then: str) -> dict:
    return {
        "Type": "Pass",
        "Parameters": {"state": step, "error.$": "$.failure.Error", "cause.$": "$.failure.Cause"},
        "ResultPath": "$.failure",
        "Next": then,
    }


@pytest.mark.parametrize("step", [*(step for step in STEPS if step not in ("Parse", "Deploy")), "DryRun"])
def test_every_step_failure_is_summarized(states, step):
    assert states[step]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": f"{step} failed"}
    ]


def test_a_parse_failure_is_notified_directly_with_the_failure_alone_as_the_state(states):
    # The state is still the request (up to 256 KiB): neither the Catch nor the summary keeps it beside the error.
    assert states["Parse"]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": "Parse failed"}]
    assert states["Parse failed"] == {
        "Type": "Pass",
        "Parameters": {"failure": {"state": "Parse", "error.$": "$.Error", "cause.$": "$.Cause"}},
        "ResultPath": "$",
        "Next": "Notify",
    }


def test_a_dry_run_failure_is_notified_directly(states):
    assert states["DryRun failed"] == failure_summary("DryRun", then="Notify")


def test_an_acquire_lock_failure_releases_the_lock_it_may_have_taken_before_notifying(states):
    # Nothing under the prefix changed: no rollback; but a crash after the put leaves a lease of this execution.
    assert states["AcquireLock failed"] == failure_summary("AcquireLock", then="Release lock after failure")
    assert states["Release lock after failure"]["Next"] == "Notify"


@pytest.mark.parametrize("step", ROLLED_BACK)
def test_a_failure_from_the_snapshot_on_is_rolled_back_and_the_lock_released_before_notifying(states, step):
    assert states[f"{step} failed"] == failure_summary(step, then="Rollback")
    assert states["Rollback"]["Next"] == "Ship slot ended?"
    assert states["Ship slot ended?"]["Default"] == "Release lock after failure"
    assert states["Release lock after failure"]["Next"] == "Notify"


def test_after_a_rollback_that_ended_the_ship_slot_no_lock_is_released(states):
    # The Deploy had handed the lock over to its ship: the execution holds none.
    assert states["Ship slot ended?"] == flag_choice("$.rollback.ship_ended", then="Notify",
                                                     otherwise="Release lock after failure")


def test_a_failed_rollback_is_recorded_as_failed_and_the_lock_still_released(states):
    assert states["Rollback"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.rollback_error", "Next": "Rollback failed"}
    ]
    assert states["Rollback failed"] == {
        "Type": "Pass",
        # What the notification reads to say ROLLBACK FAILED, with the error and its cause.
        "Parameters": {"status": "FAILED", "error.$": "$.rollback_error.Error", "cause.$": "$.rollback_error.Cause"},
        "ResultPath": "$.rollback",
        "Next": "Release lock after failure",
    }


def test_a_failed_release_after_a_failure_never_blocks_the_notification(states):
    assert states["Release lock after failure"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.lock_release", "Next": "Notify"}
    ]


def test_notify_then_fails_with_the_original_error_even_when_notifying_fails(states):
    notify = states["Notify"]
    assert notify["Parameters"] == {
        "execution.$": "$$.Execution.Name",
        "execution_arn.$": "$$.Execution.Id",
        # Not the request (up to 256 KiB): the names are in the plan summary, or in Parse's report after a refusal.
        "state.$": "$",
    }
    assert notify["ResultPath"] == "$.notification"
    assert notify["Next"] == "Failed"
    assert notify["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.notification_error", "Next": "Failed"}
    ]
    assert states["Failed"] == {"Type": "Fail", "ErrorPath": "$.failure.error", "CausePath": "$.failure.cause"}


def test_only_transient_errors_are_retried_with_backoff(states):
    for task in [*LAMBDA_TASKS, *LOCK_RELEASES]:
        retriers = states[task]["Retry"]
        retried = {error for retrier in retriers for error in retrier["ErrorEquals"]}
        if task in LOCK_RELEASES:
            expected = DYNAMODB_TRANSIENT
        else:
            # Deploy tries a deploy Astro was unavailable for again itself, on the bundle it gathered.
            expected = LAMBDA_TRANSIENT
        assert retried == expected, task
        assert not retried & PERMANENT_ERRORS
        for retrier in retriers:
            assert retrier["BackoffRate"] > 1 and retrier["MaxAttempts"] > 1


def test_every_task_has_a_timeout_and_lambda_tasks_one_beyond_their_function(synthesized, states):
    for task, handler in HANDLERS.items():
        function_timeout = Capture()
        synthesized.has(synthesized.function_id(handler), "AWS::Lambda::Function", {"Timeout": function_timeout})
        assert states[task]["TimeoutSeconds"] > function_timeout.as_number(), task
    # WaitForLock's timeout is AcquireLock's wait (TimeoutSecondsPath).
    assert [name for name, state in states.items() if state["Type"] == "Task"
            and "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state] == []


def test_transitions_do_not_grow_with_the_number_of_files(states):
    # Issue 8 counts state transitions: no state iterates over files.
    assert not [name for name, state in states.items() if state["Type"] in ("Map", "Parallel")]


def test_the_machine_has_a_timeout_and_uses_jsonpath(synthesized, definition):
    assert definition["TimeoutSeconds"] == synthesized.context["executionTimeoutMinutes"] * 60
    # moto's interpreter, which the local mode runs this definition on, has no JSONata.
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"
    assert all(state.get("QueryLanguage", "JSONPath") == "JSONPath" for state in definition["States"].values())


def test_standard_type_full_logging_and_tracing(synthesized, machine_id):
    log_group = Capture()
    synthesized.has(
        machine_id,
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": True,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group, "Arn"]}}}],
            },
            "TracingConfiguration": Match.exact({"Enabled": True}),
        },
    )
    synthesized.has(
        log_group.as_string(), "AWS::Logs::LogGroup", {"RetentionInDays": synthesized.context["logRetentionDays"]}
    )
