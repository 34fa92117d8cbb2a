"""Builds yesterday's web sessions. This repo's push is refused, on purpose (README: "What Parse checks as Airflow would"):

- it imports its helper from the repo root (`include.sessions`), as it would in its own repository; in the
  deployment's main bundle the repo is the folder `web_analytics/`, so Airflow would fail to import this file
  (Parse says: write `from web_analytics.include.sessions import ...`);
- its dag_id is already marketing_etl's: one of the two DAGs would silently disappear.
"""

from datetime import datetime

from airflow.sdk import dag, task

from include.sessions import SESSION_TIMEOUT_MINUTES, sessionize


@dag(dag_id="marketing_campaign_performance", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False)
def sessions_daily():
    @task
    def build() -> int:
        return len(sessionize([], SESSION_TIMEOUT_MINUTES))

    build()


sessions_daily()
