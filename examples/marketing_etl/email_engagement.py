"""Pulls email engagement from the ESP's export and publishes the weekly summary."""

from datetime import datetime

import pendulum
from airflow.decorators import dag, task


@dag(
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    schedule="@weekly",
    catchup=False,
    tags=["marketing", "weekly"],
    default_args={"owner": "marketing-data"},
)
def marketing_email_engagement():
    @task
    def export_engagement(data_interval_end: datetime | None = None) -> list[dict]:
        # The ESP export is keyed by week: the run's interval end names the week to read.
        week = data_interval_end.strftime("%G-W%V") if data_interval_end else "latest"
        return [{"week": week, "campaign": "newsletter", "opens": 0, "clicks": 0}]

    @task
    def summarize(rows: list[dict]) -> dict:
        opens = sum(row["opens"] for row in rows)
        clicks = sum(row["clicks"] for row in rows)
        return {"opens": opens, "clicks": clicks, "click_to_open": clicks / opens if opens else 0.0}

    summarize(export_engagement())


marketing_email_engagement()
