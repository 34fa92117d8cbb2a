"""Guard: the local mode replaces one private method of moto's Lambda. If moto moves it, fail here, loudly."""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
import tomllib

import boto3
import moto
import pytest
from moto import mock_aws
from testkit import install_probe_module, placeholder_zip
from moto.awslambda.models import LambdaFunction

from local_mode.lambda_seam import (
    SEAM_NAME,
    TIMED_OUT_ERROR,
    SeamMoved,
    check_seam,
    in_process_lambdas,
    invocation_delays,
)
from local_mode.project import PROJECT_ROOT

PROBE_MODULE = '''
import threading
import time

# Two invocations must be inside the handler at the same time to pass it.
both_inside = threading.Barrier(2, timeout=10)


class ProbeFailed(Exception):
    pass


def meeting_handler(event, context):
    both_inside.wait()
    return "met"


def timed_handler(event, context):
    return {"entered": time.monotonic(), "left": time.monotonic()}


def handler(event, context):
    return {"event": event, "function": context.function_name, "has_time": context.get_remaining_time_in_millis() > 0}


def failing_handler(event, context):
    raise ProbeFailed("the probe failed on purpose")


after_the_deadline = threading.Event()


def slow_handler(event, context):
    try:
        for _ in range(200):
            time.sleep(0.01)
    except Exception:
        return "caught"
    after_the_deadline.set()
    return "finished"
'''


def test_moto_is_pinned_exactly_to_the_version_the_seam_was_checked_against():
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [dependency for dependency in dependencies if dependency.split("[")[0].split("=")[0] == "moto"]
    assert pins, "pyproject.toml must pin moto exactly: the local mode patches a private method of it"
    assert pins[0].endswith(f"=={moto.__version__}"), (
        f"installed moto {moto.__version__} is not the pinned {pins[0]}: re-check the Lambda seam before moving the pin"
    )


def test_moto_still_offers_the_seam():
    try:
        check_seam()
    except SeamMoved as moved:
        pytest.fail(f"moto's Lambda seam moved, the local mode and the e2e tests cannot run: {moved}")


def test_check_seam_says_what_changed(monkeypatch):
    monkeypatch.setattr(LambdaFunction, SEAM_NAME, lambda self, event, context: None)
    with pytest.raises(SeamMoved, match=r"now takes \(self, event, context\)"):
        check_seam()
    monkeypatch.delattr(LambdaFunction, SEAM_NAME)
    with pytest.raises(SeamMoved, match="no longer exists"):
        check_seam()


@pytest.fixture
def probe_lambda(tmp_path, monkeypatch):
    install_probe_module(monkeypatch, tmp_path, "seam_probe", PROBE_MODULE)
    with mock_aws(), in_process_lambdas():
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lambda_ = boto3.client("lambda")
        handlers = {"probe": "handler", "failing-probe": "failing_handler", "meeting-probe": "meeting_handler",
                    "slow-probe": "slow_handler", "timed-probe": "timed_handler"}
        for name, handler in handlers.items():
            lambda_.create_function(
                FunctionName=name, Role=role, Runtime="python3.12", Handler=f"seam_probe.{handler}",
                Timeout=1 if name == "slow-probe" else 30, Code={"ZipFile": placeholder_zip()},
            )
        yield lambda_


def test_the_seam_calls_the_handler_in_process(probe_lambda):
    response = probe_lambda.invoke(FunctionName="probe", Payload=json.dumps({"execution": "e-1"}))
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"event": {"execution": "e-1"}, "function": "probe", "has_time": True}


def test_the_seam_names_a_failure_after_the_exception_class(probe_lambda):
    # Step Functions takes errorType as the error name that Retry and Catch match.
    response = probe_lambda.invoke(FunctionName="failing-probe", Payload="{}")
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Handled"
    assert payload["errorType"] == "ProbeFailed"
    assert payload["errorMessage"] == "the probe failed on purpose"
    assert payload["stackTrace"]


def test_invocations_run_at_the_same_time_not_one_after_the_other(probe_lambda):
    # Concurrent executions must really overlap in the handlers (issue 5's lock is tested that way).
    def invoke(_):
        response = probe_lambda.invoke(FunctionName="meeting-probe", Payload="{}")
        return response.get("FunctionError"), json.loads(response["Payload"].read())

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(invoke, range(2))) == [(None, "met"), (None, "met")]


def test_uneven_invocations_wait_as_drawn_before_the_handler_and_after_it(probe_lambda):
    draws = random.Random(7)
    before, after = draws.uniform(0, 0.5), draws.uniform(0, 0.5)
    with invocation_delays(0.5, seed=7):
        started = time.monotonic()
        response = probe_lambda.invoke(FunctionName="timed-probe", Payload="{}")
        answered = time.monotonic()
    times = json.loads(response["Payload"].read())
    assert times["entered"] - started >= before
    assert answered - times["left"] >= after


def test_the_seam_is_removed_afterwards():
    original = getattr(LambdaFunction, SEAM_NAME)
    with in_process_lambdas():
        assert getattr(LambdaFunction, SEAM_NAME) is not original
    assert getattr(LambdaFunction, SEAM_NAME) is original


def test_a_function_s_timeout_ends_its_invocation_as_lambda_does(probe_lambda):
    # AWS: an invocation still running at its function's timeout is stopped (the sandbox with it, no handler
    # catches that) and Invoke answers a function error of type Sandbox.Timedout, the error Step Functions
    # reports for the task.
    import seam_probe

    started = time.monotonic()
    response = probe_lambda.invoke(FunctionName="slow-probe", Payload="{}")

    assert 1 <= time.monotonic() - started < 1.9
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"]
    assert payload["errorType"] == TIMED_OUT_ERROR == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    time.sleep(1.5)
    assert not seam_probe.after_the_deadline.is_set()
