"""Churn features shared by this repo's DAGs.

This repo ships to a Dag bundle of its own (per-repo mode): its root is the bundle's root, which Airflow 3 puts on
sys.path, so the DAGs import this module as `include.features`, exactly as they do in the repo.
"""

FEATURE_WINDOW_DAYS = 90


def churn_features(customers: list[dict]) -> list[dict]:
    """Days since the last order and order count per customer, over the feature window."""
    return [
        {
            "customer_id": customer["id"],
            "days_since_last_order": min(customer.get("days_since_last_order", FEATURE_WINDOW_DAYS), FEATURE_WINDOW_DAYS),
            "orders": customer.get("orders", 0),
        }
        for customer in customers
    ]
