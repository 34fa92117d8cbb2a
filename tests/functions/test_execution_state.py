"""The execution state: one model of what flows between the states, read leniently where a reader must go on."""

import pytest

from functions.shared.documents import InvalidDocument
from functions.shared.execution_state import (
    ExecutionState, Failure, LockState, RequestedNames, RollbackFailure, RollbackResult, RunScope, StateKey,
)
from functions.shared.plan_store import Plan

SCOPE = {"workspace": "ws", "deployment": "dep", "repo": "repo-a", "execution": "exec-1"}
SUMMARY = {**SCOPE, "prefix": "dags/ws/dep/repo-a/", "plan": "s3://b/plans/exec-1.json", "files": 2, "bytes": 20,
           "dag_count": 1, "dag_ids": ["etl"], "lock_key": "ws/dep"}


def test_each_key_is_a_result_path_and_its_fields_are_the_models():
    assert StateKey.LOCK.path == "$.lock"
    assert StateKey.LOCK.field_path("wait_seconds") == "$.lock.wait_seconds"
    # A step's Catch result lands at $.failure before its summary replaces it.
    assert StateKey.FAILURE.field_path("Error") == "$.failure.Error"
    assert StateKey.FAILURE.field_path("cause") == "$.failure.cause"
    with pytest.raises(ValueError, match="no field 'waited'"):
        StateKey.LOCK.field_path("waited")


def test_the_state_after_a_rollback_reads_as_its_documents():
    state = ExecutionState.from_json({
        **SUMMARY, "lock": {"key": "ws/dep", "acquired": True, "waiting_since": 1.0},
        "failure": {"state": "Upload", "error": "UploadFailed", "cause": "2 of 5 files"},
        "rollback": {"status": "restored", "prefix": "dags/ws/dep/repo-a/", "restored": 3},
    })
    assert state.plan.repo == "repo-a" and state.plan.prefix == "dags/ws/dep/repo-a/"
    assert state.lock == LockState(key="ws/dep", acquired=True, waiting_since=1.0)
    assert state.failure == Failure(state="Upload", error="UploadFailed", cause="2 of 5 files")
    assert state.rollback == RollbackResult(status="restored", prefix="dags/ws/dep/repo-a/", restored=3, ship_ended=False)


def test_what_does_not_fit_its_model_reads_as_absent():
    refused = {"astroWorkspace": "ws", "repo": 5, "failure": {"Error": "InvalidRequest", "Cause": "..."},
               "rollback": {"status": "FAILED", "error": "RollbackFailed"}}
    state = ExecutionState.from_json(refused)
    # The request Parse refused is no plan summary; a Catch result not yet summarized is no failure.
    assert state.plan is None and state.failure is None
    assert state.rollback == RollbackFailure(error="RollbackFailed")
    assert RequestedNames.from_request(refused) == RequestedNames(workspace="ws", repo=5)


def test_documents_check_their_types_and_names():
    assert RunScope.from_json({**SCOPE, "extra": 1}) == RunScope(**SCOPE)
    with pytest.raises(InvalidDocument, match="RunScope.execution: missing"):
        RunScope.from_json({key: value for key, value in SCOPE.items() if key != "execution"})
    with pytest.raises(InvalidDocument, match="LockState.acquired: expected bool, got str"):
        LockState.from_json({"key": "k", "acquired": "yes", "waiting_since": 1})
    with pytest.raises(InvalidDocument, match="is not a valid name"):
        RunScope.from_json({**SCOPE, "deployment": ".."})


def test_a_plan_read_back_keeps_every_path_inside_the_repo():
    planned = {"source_bucket": "b", "source_key": "k", "etag": '"e"', "size": 1, "kind": "dag"}
    plan = {**SCOPE, "prefix": "dags/ws/dep/repo-a/", "files": [{**planned, "path": "etl.py"}]}
    assert Plan.from_json(plan).files[0].path == "etl.py"
    with pytest.raises(InvalidDocument, match="escapes its folder"):
        Plan.from_json({**plan, "files": [{**planned, "path": "../other/etl.py"}]})
