"""Loads yesterday's ad events into the campaign performance table, then scores channels."""

import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.python import PythonOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from marketing_etl.include.attribution import ATTRIBUTION_WINDOW, weighted_conversions

SQL_FOLDER = os.path.join(os.path.dirname(__file__), "sql")


def score_channels(ti, window_days: int, **_) -> dict[str, float]:
    # Conversions per channel over the attribution window, as the load task returned them.
    rows = ti.xcom_pull(task_ids="load_campaign_performance") or []
    conversions = {channel: count for channel, count, days in rows if days <= window_days}
    return weighted_conversions(conversions)


with DAG(
    dag_id="marketing_campaign_performance",
    description="Daily campaign performance for the marketing dashboards",
    start_date=datetime(2024, 1, 1),
    schedule="0 5 * * *",
    catchup=False,
    template_searchpath=[SQL_FOLDER],
    default_args={"owner": "marketing-data", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["marketing", "daily"],
) as dag:
    load = SQLExecuteQueryOperator(
        task_id="load_campaign_performance",
        conn_id="warehouse",
        sql="campaign_performance.sql",
    )
    score = PythonOperator(
        task_id="score_channels",
        python_callable=score_channels,
        op_kwargs={"window_days": ATTRIBUTION_WINDOW.days},
    )
    load >> score
