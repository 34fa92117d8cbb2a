"""Why Parse refused a request, in full, in the DAG bucket: the error it raises (the execution's cause) stays small."""

from botocore.exceptions import BotoCoreError, ClientError

from functions.shared.errors import InvalidRequest
from functions.shared.plan_store import ParseReport, save_parse_report


def reported_failure(error: Exception, request: object, execution: str, dag_bucket: str) -> Exception:
    """Store the report of `error` (who the request was for, every problem); return what Parse raises: an
    InvalidRequest then points to the report, any other error is raised as it was.

    A report that cannot be stored leaves the error as it is: the notification then names no report.
    """
    try:
        report = save_parse_report(dag_bucket, ParseReport.of(execution, request, error))
    except (BotoCoreError, ClientError):
        return error
    return error.reported(report) if isinstance(error, InvalidRequest) else error
