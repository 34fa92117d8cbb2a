"""The full plan lives in the DAG bucket; states carry a pointer to it (Step Functions caps payloads at 256 KB)."""

from functions.shared.aws import client
from functions.shared.models import Plan
from functions.shared.paths import plan_key


def save_plan(bucket: str, plan: Plan) -> str:
    key = plan_key(plan.execution)
    client("s3").put_object(
        Bucket=bucket, Key=key, Body=plan.model_dump_json().encode(), ContentType="application/json"
    )
    return f"s3://{bucket}/{key}"


def load_plan(bucket: str, execution: str) -> Plan:
    # Found by execution name, not by a pointer from the state: a step reads only the plan Parse wrote for it.
    body = client("s3").get_object(Bucket=bucket, Key=plan_key(execution))["Body"].read()
    return Plan.model_validate_json(body)
