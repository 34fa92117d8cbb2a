"""The dry run's report: Parse's problems, or the diff against what is live and the problems the later steps
would find with what Parse can not see (an emptied Dag bundle). Reads only; writes nothing."""

from functions.shared.dag_bundles import MAIN_BUNDLE
from functions.shared.errors import EmptyBundleRefused
from functions.shared.execution_state import DryRunReport, PlanSummary, RefusedDryRun
from functions.shared.live_comparison import compare_with_live
from functions.shared.manifest import stored_files
from functions.shared.plan_store import Plan, load_plan


def dry_run_report(state: dict, bucket: str) -> DryRunReport:
    if "problems" in state:
        refused = RefusedDryRun.from_json(state)
        return DryRunReport(passed=False, problems=refused.problems, error=refused.error, cause=refused.cause)
    summary = PlanSummary.from_json(state)
    plan = load_plan(bucket, summary.execution)
    comparison = compare_with_live(bucket, plan)
    problems = empty_bundle_problems(bucket, plan)
    if problems:
        return DryRunReport(passed=False, problems=problems, error=EmptyBundleRefused.__name__,
                            cause="; ".join(problems), comparison=comparison, warnings=summary.warnings)
    return DryRunReport(passed=True, comparison=comparison, warnings=summary.warnings)


def empty_bundle_problems(bucket: str, plan: Plan) -> list[str]:
    """Deploy's refusal of a bundle without any .py file, found before it: after this deploy, the bundle would
    hold this repo's planned files (and, in the main bundle, the other repos' live ones)."""
    if plan.allow_empty_deployment or any(entry.path.endswith(".py") for entry in plan.files):
        return []
    if plan.bundle == MAIN_BUNDLE:
        others = stored_files(bucket, plan.workspace, plan.deployment)
        if any(path.endswith(".py") for repo, files in others.items() if repo != plan.repo for path in files):
            return []
        emptied = f"the main Dag bundle of {plan.workspace}/{plan.deployment}"
    else:
        emptied = f"Dag bundle {plan.bundle} of {plan.workspace}/{plan.deployment}"
    return [f"{emptied} would hold no .py file: deploying it would remove every DAG it runs. Send "
            "allow_empty_deployment: true to empty it on purpose"]
