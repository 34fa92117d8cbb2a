"""Plausible Airflow DAG files, 2-20 KB each, the same on every run (each file has its own seeded RNG).

File i is the same whatever N is, so N=100 holds the ten files of N=10 and ninety more.
"""

import random
from dataclasses import dataclass
from pathlib import Path

SEED = "astro-dag-deploy-bench"
MIN_BYTES = 2 * 1024
MAX_BYTES = 20 * 1024
# Most DAG files are a few KB; a few orchestrate dozens of tasks. A task block is under 1.5 KB and the closing
# lines under 0.5 KB, so a file stops growing between these targets and stays within MIN_BYTES..MAX_BYTES.
_TARGET_LOW, _TARGET_MODE, _TARGET_HIGH = 2300, 5000, 17500

_DOMAINS = {
    "finance": ["invoices", "payments", "ledger_entries", "refunds", "fx_rates", "budgets"],
    "marketing": ["campaigns", "email_events", "ad_spend", "web_sessions", "leads", "attribution"],
    "sales": ["orders", "opportunities", "quotes", "accounts", "contracts", "territories"],
    "operations": ["shipments", "inventory", "warehouses", "suppliers", "returns", "carriers"],
    "product": ["feature_flags", "app_events", "experiments", "subscriptions", "churn_signals", "nps"],
}
_SCHEDULES = ["@hourly", "@daily", "0 2 * * *", "30 5 * * 1-5", "15 */4 * * *", "@weekly", "0 6 1 * *"]
_WAREHOUSES = ["snowflake_default", "redshift_analytics", "postgres_reporting", "bigquery_prod"]
_COLUMNS = ["id", "created_at", "updated_at", "customer_id", "amount", "currency", "status", "region",
            "channel", "account_id", "quantity", "unit_price", "source_system", "batch_id", "country_code"]
_CHECKS = ["row_count", "null_ratio", "freshness", "duplicates", "referential_integrity"]


@dataclass(frozen=True)
class DagFile:
    path: str  # inside the repo
    dag_id: str
    text: str

    @property
    def body(self) -> bytes:
        return self.text.encode()


def _sql(rng: random.Random, domain: str, entity: str) -> str:
    columns = rng.sample(_COLUMNS, rng.randint(4, 9))
    grouped = columns[: rng.randint(1, 3)]
    lines = [
        f"INSERT INTO analytics.{domain}_{entity}_daily",
        "SELECT",
        *(f"    {column}," for column in grouped),
        *(f"    SUM({column}) AS total_{column}," for column in columns[len(grouped):-1]),
        "    COUNT(*) AS row_count",
        f"FROM staging.{entity}",
        "WHERE updated_at >= '{{ data_interval_start }}'",
        "  AND updated_at < '{{ data_interval_end }}'",
        f"  AND status <> '{rng.choice(['deleted', 'cancelled', 'test'])}'",
        f"GROUP BY {', '.join(grouped)}",
    ]
    return "\n".join(lines)


def _task_block(rng: random.Random, domain: str, entity: str, step: int) -> tuple[str, str]:
    """One task's code (indented for the DAG's `with` block) and its variable name."""
    kind = rng.choice(["sql", "sql", "python", "bash", "check"])
    name = f"{kind}_{entity}_{step}"
    if kind == "sql":
        sql = _sql(rng, domain, entity).replace("\n", "\n            ")
        code = f'''
    {name} = SQLExecuteQueryOperator(
        task_id="{name}",
        conn_id="{rng.choice(_WAREHOUSES)}",
        sql="""
            {sql}
        """,
        retries={rng.randint(1, 4)},
    )
'''
    elif kind == "python":
        code = f'''
    {name} = PythonOperator(
        task_id="{name}",
        python_callable=_summarize,
        op_kwargs={{"table": "staging.{entity}", "threshold": {rng.randint(10, 5000)}}},
        execution_timeout=timedelta(minutes={rng.choice([5, 10, 20, 45])}),
    )
'''
    elif kind == "bash":
        code = f'''
    {name} = BashOperator(
        task_id="{name}",
        bash_command=(
            "python -m pipelines.{domain}.export "
            "--entity {entity} --date {{{{ ds }}}} --partitions {rng.randint(1, 64)}"
        ),
        env={{"PIPELINE_ENV": "{rng.choice(['prod', 'staging'])}", "BATCH_SIZE": "{rng.choice([500, 1000, 5000])}"}},
        append_env=True,
    )
'''
    else:
        check = rng.choice(_CHECKS)
        code = f'''
    {name} = SQLExecuteQueryOperator(
        task_id="{name}",
        conn_id="{rng.choice(_WAREHOUSES)}",
        sql="SELECT _assert_{check}('analytics.{domain}_{entity}_daily', '{{{{ ds }}}}')",
        trigger_rule="all_success",
    )
'''
    return code, name


def dag_file(number: int) -> DagFile:
    """The DAG file with this number; the same text on every call."""
    rng = random.Random(f"{SEED}-{number}")
    domain = rng.choice(sorted(_DOMAINS))
    entity = rng.choice(_DOMAINS[domain])
    dag_id = f"{domain}_{entity}_{number:04d}"
    owner = f"team-{domain}"
    header = f'''"""{domain.title()} pipeline for {entity.replace("_", " ")}: load, transform and check.

Owned by {owner}. Runs {rng.choice(["after the nightly extract", "every few hours", "on business days"])}
and publishes analytics.{domain}_{entity}_daily for the dashboards.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.hooks.base import BaseHook
from airflow.operators.bash import BashOperator
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import PythonOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

WAREHOUSE_CONN = "{rng.choice(_WAREHOUSES)}"

DEFAULT_ARGS = {{
    "owner": "{owner}",
    "depends_on_past": False,
    "email": ["{owner}@example.com"],
    "email_on_failure": True,
    "retries": {rng.randint(0, 3)},
    "retry_delay": timedelta(minutes={rng.choice([2, 5, 10, 15])}),
}}


def _summarize(table: str, threshold: int, **context) -> dict:
    """Count the interval's rows and fail loudly when fewer arrived than expected."""
    hook = BaseHook.get_hook(WAREHOUSE_CONN)
    rows = hook.get_first(f"SELECT COUNT(*) FROM {{table}} WHERE ds = '{{context['ds']}}'")[0]
    if rows < threshold:
        raise ValueError(f"{{table}}: {{rows}} rows for {{context['ds']}}, expected at least {{threshold}}")
    return {{"table": table, "rows": rows}}


with DAG(
    dag_id="{dag_id}",
    default_args=DEFAULT_ARGS,
    schedule="{rng.choice(_SCHEDULES)}",
    start_date=datetime({rng.randint(2021, 2025)}, {rng.randint(1, 12)}, 1),
    catchup=False,
    max_active_runs={rng.randint(1, 3)},
    tags=["{domain}", "{entity}", "tier-{rng.randint(1, 3)}"],
) as dag:
    start = EmptyOperator(task_id="start")
    done = EmptyOperator(task_id="done")
'''
    target = rng.triangular(_TARGET_LOW, _TARGET_HIGH, _TARGET_MODE)
    blocks, names, size = [], [], len(header)
    while size < target:
        code, name = _task_block(rng, domain, entity, len(names) + 1)
        blocks.append(code)
        names.append(name)
        size += len(code)
    # Every task runs between start and done; consecutive tasks in pairs run in parallel.
    chain = [names[index:index + 2] for index in range(0, len(names), 2)]
    stages = ["start", *(f"[{', '.join(stage)}]" if len(stage) > 1 else stage[0] for stage in chain), "done"]
    footer = "\n    " + " >> ".join(stages) + "\n"
    return DagFile(path=f"{domain}/{dag_id}.py", dag_id=dag_id, text=header + "".join(blocks) + footer)


def dag_files(count: int) -> list[DagFile]:
    return [dag_file(number) for number in range(1, count + 1)]


def write_dag_files(folder: Path, files: list[DagFile]) -> None:
    for file in files:
        target = folder / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.body)
