"""Refreshes the revenue-by-region dashboard table (Airflow 3 task SDK)."""

import os

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import dag, task

from finance_reports.common.fiscal_calendar import fiscal_period

SQL_FOLDER = os.path.join(os.path.dirname(__file__), "sql")


@dag(
    dag_id="finance_revenue_dashboard",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    template_searchpath=[SQL_FOLDER],
    tags=["finance", "dashboard"],
)
def revenue_dashboard():
    @task
    def period(logical_date=None) -> dict:
        fiscal_year, fiscal_month = fiscal_period(logical_date.date())
        return {"fiscal_year": fiscal_year, "fiscal_month": fiscal_month}

    refresh = SQLExecuteQueryOperator(
        task_id="revenue_by_region",
        conn_id="warehouse",
        sql="revenue_by_region.sql",
    )
    period() >> refresh


revenue_dashboard()
