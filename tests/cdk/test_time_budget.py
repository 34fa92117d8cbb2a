"""The worst case of one execution fits its timeout, or `cdk synth` says what to raise."""

import json
from pathlib import Path

import pytest
from aws_cdk import App

from cdk.config import SettingsError, StackSettings
from cdk.stack import AstroDagDeployStack
from cdk.time_budget import check_time_budget, worst_case, worst_case_seconds

CDK_JSON = Path(__file__).parents[2] / "cdk.json"
# The defaults' worst case, 20,415 s, leaves this much of their execution timeout.
DEFAULT_MARGIN_SECONDS = 375 * 60 - 20415


def test_the_worst_case_is_every_attempt_to_its_timeout_every_retry_and_the_longest_lock_wait():
    settings = StackSettings(deploy_timeout_seconds=600, lock_max_wait_minutes=20)
    # Lambda retries per step: throttling 2+4+8+16+32+64 s of waits (a refused invocation never runs); service
    # errors 2+4 s of waits and 2 more attempts, each up to the task timeout (the function's + 30 s).
    waits = 126 + 6
    parse = snapshot = clear_prefix = 3 * 330 + waits
    acquire_lock = notify = 3 * 90 + waits
    compare = 3 * 60 + waits
    upload = rollback = 3 * 630 + waits
    # Deploy tries a deploy Astro was unavailable for again itself, within its timeout.
    deploy = 3 * 630 + waits
    lock_phase = 2 * acquire_lock + 20 * 60 + 60
    # DynamoDB's deleteItem: 7 attempts of 30 s, waits 1+2+4+8+16+32 s.
    release = 7 * 30 + 63

    # Coalescing: another execution's deferred change shipped first (a Deploy), the decision (the lock function),
    # its own ship deferred and never told (a Deploy attempt and a minute), then the lock waited for again; its
    # Deploy meets a ship in flight, and it defers once more, untold, and waits for the lock a third time.
    ship_or_defer = acquire_lock
    defer_window = 630 + 60
    expected = (parse + lock_phase + deploy + compare + snapshot + clear_prefix + upload + ship_or_defer + defer_window
                + lock_phase + defer_window + lock_phase + deploy + rollback + release + notify)
    assert expected == 20415
    assert worst_case_seconds(settings) == expected
    assert [phase.name for phase in worst_case(settings)] == [
        "Parse", "AcquireLock / WaitForLock", "ShipDeferredChanges", "CompareWithLive", "Snapshot", "ClearPrefix",
        "Upload", "ShipOrDefer", "DeferShip", "AcquireLock / WaitForLock again", "DeferShip again (a ship in flight)",
        "AcquireLock / WaitForLock a third time", "Deploy", "Rollback",
        "Release lock after failure", "Notify",
    ]


def test_the_defaults_and_cdk_json_fit_with_a_margin():
    defaults = StackSettings()
    context = json.loads(CDK_JSON.read_text())["context"]
    from_cdk_json = StackSettings.from_context(context)

    for settings in (defaults, from_cdk_json):
        check_time_budget(settings)
        assert settings.execution_timeout_minutes * 60 - worst_case_seconds(settings) == DEFAULT_MARGIN_SECONDS
    assert DEFAULT_MARGIN_SECONDS >= 10 * 60


def test_a_configuration_that_cannot_fit_fails_synthesis_naming_the_figures_and_what_to_raise():
    settings = StackSettings(source_buckets=("ci-artifacts",), execution_timeout_minutes=60,
                             deploy_timeout_seconds=600, lock_max_wait_minutes=20)

    with pytest.raises(SettingsError) as raised:
        AstroDagDeployStack(App(), "TooShort", settings=settings)

    (problem,) = raised.value.problems
    assert problem.startswith("executionTimeoutMinutes: 60 minutes is shorter than the worst case of one execution, "
                              "20415 s (Parse 1122 s, AcquireLock / WaitForLock 2064 s, ShipDeferredChanges 2022 s, "
                              "CompareWithLive 312 s, ")
    assert "Deploy 2022 s" in problem and "Notify 402 s" in problem
    assert "raise executionTimeoutMinutes to at least 341" in problem
    assert "lockMaxWaitMinutes (20)" in problem and "deployTimeoutSeconds (600)" in problem
