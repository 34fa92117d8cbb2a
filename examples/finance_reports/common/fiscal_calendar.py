"""The company's fiscal calendar: the year starts on February 1st.

Astro runs this repo's files from dags/finance_reports/, and Airflow puts the dags folder on sys.path:
DAGs import this module as `finance_reports.common.fiscal_calendar`.
"""

from datetime import date

FISCAL_YEAR_START_MONTH = 2


def fiscal_period(day: date) -> tuple[int, int]:
    """(fiscal year, fiscal month 1-12) of a calendar day."""
    month = (day.month - FISCAL_YEAR_START_MONTH) % 12 + 1
    year = day.year + 1 if day.month >= FISCAL_YEAR_START_MONTH else day.year
    return year, month


def is_close_day(day: date) -> bool:
    """The books close on the third calendar day of each month."""
    return day.day == 3
