"""Errors' messages stay bounded: they become the state's and the execution's cause (a Fail state's cause holds at
most 32,768 characters, a state 256 KiB), however many problems a request has."""

import json

from hypothesis import given
from hypothesis import strategies as st

from functions.shared.errors import (
    MESSAGE_LIMIT, PROBLEM_LIMIT, PROBLEMS_SHOWN, InvalidRequest, PipelineError, UploadFailed,
)

REPORT = "s3://dag-bucket/plans/repo-a-1.report.json"
# Lambda's error document around a message: {"errorMessage", "errorType", "requestId", "stackTrace"}.
FAIL_CAUSE_LIMIT = 32_768


def lambda_cause(error: Exception) -> str:
    return json.dumps({"errorMessage": str(error), "errorType": type(error).__name__, "requestId": "r" * 36,
                       "stackTrace": ["  File \"/var/task/functions/parse/app.py\", line 35, in handler\n"] * 20})


def test_a_few_problems_are_all_in_the_message():
    refused = InvalidRequest(["repo: String should match pattern", "etl.py: does not compile"])
    assert str(refused) == "2 problems in the request: repo: String should match pattern; etl.py: does not compile"


def test_many_problems_are_counted_the_first_ones_shown_and_the_report_named():
    problems = [f"body.dags[{number}].dag_file: bucket 'other' is not an allowed source" for number in range(37)]
    message = str(InvalidRequest(problems).reported(REPORT))
    assert message.startswith(f"37 problems in the request (full report: {REPORT}): the first {PROBLEMS_SHOWN}: ")
    assert "body.dags[19]" in message and "body.dags[20]" not in message


def test_each_problem_shown_is_cut_to_its_limit():
    message = str(InvalidRequest(["x" * 5000]))
    assert f"{'x' * PROBLEM_LIMIT}... ({5000 - PROBLEM_LIMIT} more characters)" in message


@given(problems=st.lists(st.text(min_size=0, max_size=2000), min_size=0, max_size=60))
def test_any_refusal_fits_a_fail_states_cause(problems):
    refused = InvalidRequest(problems).reported(REPORT)
    assert len(json.dumps(str(refused))) <= MESSAGE_LIMIT
    assert len(lambda_cause(refused)) < FAIL_CAUSE_LIMIT // 2
    assert refused.problems == problems  # all of them, for the report


@given(message=st.text(min_size=0, max_size=20_000))
def test_every_pipeline_error_is_bounded_once_escaped_as_json(message):
    error = UploadFailed(message)
    assert len(json.dumps(str(error))) <= MESSAGE_LIMIT
    assert str(error) == message or str(error).endswith("more characters)")


def test_a_non_ascii_message_is_bounded_by_its_escaped_length():
    # Six characters each once escaped: the bound holds on what Lambda's error document carries.
    error = PipelineError("é" * MESSAGE_LIMIT)
    assert len(json.dumps(str(error))) <= MESSAGE_LIMIT < len(json.dumps("é" * MESSAGE_LIMIT))
