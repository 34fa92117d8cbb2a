"""What a local run reports: one JSON document for machines, a short summary for people."""

from typing import TextIO

from functions.shared.notification import readable_cause

from local_mode.scenario import Outcome
from local_mode.world import LocalWorld

CAUSE_SHOWN = 400


def json_report(world: LocalWorld, outcomes: list[Outcome]) -> dict:
    return {
        "executions": [
            {
                "repo": outcome.request.repo,
                "workspace": outcome.request.workspace,
                "deployment": outcome.request.deployment,
                "name": outcome.result.name,
                "status": outcome.result.status,
                "error": outcome.result.error,
                "cause": outcome.result.cause,
                "states": outcome.result.states,
                "notifications": [
                    {"subject": note.subject, "message": note.message} for note in outcome.result.notifications
                ],
            }
            for outcome in outcomes
        ],
        "s3_keys": world.dag_keys(),
        "astro": world.astro_dag_bundles(),
    }


def print_summary(outcomes: list[Outcome], report: dict, stream: TextIO) -> None:
    print("\nSummary", file=stream)
    for outcome in outcomes:
        request, result = outcome.request, outcome.result
        target = f"{request.repo or '?'} -> {request.workspace or '?'}/{request.deployment or '?'}"
        duration = f" in {result.seconds:.1f} s" if result.seconds is not None else ""
        verdict = "as expected" if outcome.as_expected else f"EXPECTED {request.expect}"
        print(f"  {target}: {result.status}{duration} ({verdict}), execution {result.name}", file=stream)
        if result.status != "SUCCEEDED":
            print(f"    failed at: {result.failed_state or '?'}", file=stream)
            print(f"    error: {result.error or '?'}", file=stream)
            print(f"    cause: {readable_cause(result.cause, CAUSE_SHOWN)}", file=stream)
        for note in result.notifications:
            print(f"    notification sent: {note.subject}", file=stream)
        if not result.notifications and result.status != "SUCCEEDED":
            print("    notification sent: none", file=stream)
    for deployment_id, bundles in report["astro"].items():
        for bundle, paths in bundles.items():
            if not paths:
                continue
            print(f"  Astro deployment {deployment_id} (local stand-in), Dag bundle {bundle}, runs {len(paths)} files:",
                  file=stream)
            for path in paths:
                print(f"    {path}", file=stream)
