"""Marketing attribution rules shared by this repo's DAGs.

Astro runs this repo's files from dags/marketing_etl/, and Airflow puts the dags folder on sys.path:
DAGs import these helpers as `marketing_etl.include.attribution`.
"""

from datetime import timedelta

ATTRIBUTION_WINDOW = timedelta(days=28)
CHANNEL_WEIGHTS = {"paid_search": 0.4, "paid_social": 0.3, "email": 0.2, "organic": 0.1}


def weighted_conversions(conversions_by_channel: dict[str, int]) -> dict[str, float]:
    """Spread conversions over channels by their weight; unknown channels count as organic."""
    weighted: dict[str, float] = {}
    for channel, conversions in conversions_by_channel.items():
        weight = CHANNEL_WEIGHTS.get(channel, CHANNEL_WEIGHTS["organic"])
        weighted[channel] = round(conversions * weight, 2)
    return weighted
