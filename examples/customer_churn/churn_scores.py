"""Scores every customer's churn risk each night from the features in include/features.py."""

from datetime import datetime

from airflow.sdk import dag, task

from include.features import FEATURE_WINDOW_DAYS, churn_features


@dag(dag_id="churn_scores", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False, tags=["ml"])
def churn_scores():
    @task
    def load_customers() -> list[dict]:
        return [{"id": 1, "days_since_last_order": 12, "orders": 7}]

    @task
    def score(customers: list[dict]) -> int:
        features = churn_features(customers)
        return sum(1 for row in features if row["days_since_last_order"] > FEATURE_WINDOW_DAYS // 3)

    score(load_customers())


churn_scores()
