"""Bundles for the oracle: each rule of Parse's Airflow checks in both modes, and clean bundles it must accept.

A case is a deployment: `repos` maps each repo to its files; `pushed` is the repo of the request, the others are
live in the DAG bucket (shipped earlier from commit LIVE_COMMIT). `refusal` is a part of Parse's message when the
bundle fails in Airflow (an import error, or one dag_id in two files), None when Airflow loads it cleanly.
"""

from dataclasses import dataclass, field

from astro_dag_deploy.folder import folder_files
from local_mode.project import EXAMPLES_DIR

MAIN = "main"
PER_REPO = "per-repo"
LIVE_COMMIT = "feedc0de"


@dataclass(frozen=True)
class Case:
    name: str
    mode: str
    pushed: str
    repos: dict[str, dict[str, str]]
    refusal: str | None = None
    # Whether the deployment lists its installed packages (installedPackages): the Airflow environment's.
    lists_installed: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)


def with_dag(dag_id: str, imports: str = "", body: str = "") -> str:
    """A `with DAG` file (classic imports)."""
    return (f"from datetime import datetime\n\nfrom airflow import DAG\nfrom airflow.operators.empty import "
            f"EmptyOperator\n{imports}\n\nwith DAG(dag_id={dag_id!r}, start_date=datetime(2024, 1, 1), "
            f"schedule=None):\n    EmptyOperator(task_id='start')\n{body}")


def decorated_dag(name: str, imports: str = "", dag_id: str | None = None) -> str:
    """An `@dag` file (task SDK)."""
    argument = f"dag_id={dag_id!r}, " if dag_id else ""
    return (f"from airflow.sdk import dag, task\n{imports}\n\n\n@dag({argument}schedule=None)\ndef {name}():\n"
            f"    @task\n    def run():\n        return 1\n\n    run()\n\n\n{name}()\n")


HELPERS = {
    "include/__init__.py": "",
    "include/helpers.py": "from .constants import WINDOW\n\n\ndef window():\n    return WINDOW\n",
    "include/constants.py": "WINDOW = 28\n",
    "sql/report.sql": "select 1;\n",
}
FINANCE = {
    "revenue.py": decorated_dag("finance_revenue", "from finance.common.calendar import period", "finance_revenue"),
    "common/calendar.py": "def period():\n    return 1\n",
}
# The same repo as it is written for a Dag bundle of its own.
FINANCE_OWN_BUNDLE = {
    "revenue.py": decorated_dag("finance_revenue", "from common.calendar import period", "finance_revenue"),
    "common/calendar.py": "def period():\n    return 1\n",
}
CHURN = {
    "churn.py": decorated_dag("churn_scores", "from include.features import FEATURES"),
    "include/features.py": "FEATURES = ['orders']\n",
}


def example(repo: str) -> dict[str, str]:
    """One of the project's example repos (examples/), as the client would push it."""
    return {path: (EXAMPLES_DIR / repo / path).read_text() for path in folder_files(EXAMPLES_DIR / repo)}


def _marketing(dag_file: str, **more: str) -> dict[str, str]:
    return {"etl.py": dag_file, **HELPERS, **more}


CASES = [
    # ---- the project's examples: two repos of a main bundle, one of its own, one refused ----
    Case("examples: finance_reports beside marketing_etl", MAIN, "finance_reports", {
        "finance_reports": example("finance_reports"), "marketing_etl": example("marketing_etl"),
    }),
    Case("examples: customer_churn in its own bundle", PER_REPO, "customer_churn", {
        "customer_churn": example("customer_churn"),
    }),
    Case("examples: web_analytics, refused", MAIN, "web_analytics", {
        "web_analytics": example("web_analytics"), "marketing_etl": example("marketing_etl"),
        "finance_reports": example("finance_reports"),
    }, refusal="write `from web_analytics.include.sessions import SESSION_TIMEOUT_MINUTES, sessionize`"),

    # ---- clean bundles, main mode ----
    Case("main: helpers by package path, SQL, .airflowignore, @dag and with DAG", MAIN, "marketing", {
        "marketing": _marketing(
            with_dag("marketing_etl", "from marketing.include.helpers import window"),
            **{"weekly.py": decorated_dag("marketing_weekly", "from marketing.include import constants"),
               ".airflowignore": "include/\nsql/\n"},
        ),
        "finance": FINANCE,
    }),
    Case("main: one repo imports another's live module", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from finance.common.calendar import period")),
        "finance": FINANCE,
    }),
    Case("main: a folder without __init__.py is a namespace package", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("marketing_etl", "from marketing.lib import rules"),
                      "lib/rules.py": "RULES = 1\n"},
    }),
    Case("main: dynamic dag_ids", MAIN, "marketing", {
        "marketing": {"dynamic.py": "from datetime import datetime\nfrom airflow import DAG\n\nfor region in ('eu', "
                                    "'us'):\n    with DAG(dag_id=f'load_{region}', start_date=datetime(2024, 1, 1), "
                                    "schedule=None):\n        pass\n"},
        "finance": FINANCE,
    }),
    Case("main: a repo name that is no identifier, whose files do not import each other", MAIN, "marketing-etl", {
        "marketing-etl": {"etl.py": with_dag("marketing_etl"), "sql/report.sql": "select 1;\n"},
    }),
    Case("main: ignored files are shipped, never parsed", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl"), **{
            ".airflowignore": "# drafts and old DAGs\nold_*.py\ndrafts/\n",
            "old_etl.py": with_dag("marketing_etl", "from nowhere_at_all import thing"),
            "drafts/broken.py": "from airflow import DAG\ndef broken(:\n",
        }),
    }),
    Case("main: nested .airflowignore with a negation", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("marketing_etl"),
                      "pipelines/.airflowignore": "*.py\n!keep.py\n",
                      "pipelines/keep.py": with_dag("marketing_keep"),
                      "pipelines/skip.py": with_dag("marketing_etl", "from .missing import x")},
    }),
    Case("main: safe mode skips helpers that do not mention Airflow", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from marketing.include.helpers import window"), **{
            "tools.py": "from .constants import LIMIT\n",
            "constants.py": "LIMIT = 3\n",
        }),
    }),
    Case("main: a helper nobody imports may be broken", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl"), **{"unused.py": "from include.helpers import window\n",
                                                              "scratch.py": "def broken(:\n"}),
    }),
    Case("main: imports in functions and guarded imports are not run at parse time", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("marketing_etl", "try:\n    import not_installed_anywhere\nexcept "
                                         "ImportError:\n    not_installed_anywhere = None\n", "\n\ndef later():\n"
                                         "    from include.helpers import window\n    return window()\n")},
    }),
    # Airflow keeps the second DAG without an error: not refused (the oracle's rule), though one DAG is lost.
    Case("main: one file defines one dag_id twice", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("marketing_etl", body="\nwith DAG(dag_id='marketing_etl', schedule=None):\n"
                                                              "    pass\n")},
    }),
    Case("main: installed packages listed, used", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("marketing_etl", "import yaml\nimport pendulum")},
    }, lists_installed=True),

    # ---- clean bundles, per-repo mode ----
    Case("per-repo: helpers from the repo root, SQL, .airflowignore", PER_REPO, "churn", {
        "churn": {**CHURN, "sql/scores.sql": "select 1;\n", ".airflowignore": "sql/\n",
                  "weekly.py": with_dag("churn_weekly", "from include.features import FEATURES")},
        "finance": FINANCE_OWN_BUNDLE,
    }),
    Case("per-repo: a DAG file at the root imports a module beside it", PER_REPO, "churn", {
        "churn": {"churn.py": decorated_dag("churn_scores", "import features"), "features.py": "FEATURES = 1\n"},
    }),
    Case("per-repo: dynamic dag_ids", PER_REPO, "churn", {
        "churn": {"dynamic.py": "from airflow.sdk import dag\n\nfor name in ('a', 'b'):\n    @dag(dag_id=f'churn_{name}', "
                                "schedule=None)\n    def build():\n        pass\n    build()\n"},
    }),

    # ---- rule 1: imports, main mode ----
    Case("main: a module of the repo imported from the repo root", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from include.helpers import window")),
    }, refusal="write `from marketing.include.helpers import window`"),
    Case("main: a module beside the DAG file imported by its name", MAIN, "marketing", {
        "marketing": {"dags/etl.py": with_dag("marketing_etl", "import utils"), "dags/utils.py": "X = 1\n"},
    }, refusal="write `import marketing.dags.utils`"),
    Case("main: a relative import in a DAG file", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from .include.helpers import window")),
    }, refusal="a relative import in a DAG file fails"),
    Case("main: a module of the repo that does not exist", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from marketing.include.missing import window")),
    }, refusal="no module 'marketing.include.missing' in the bundle"),
    Case("main: another repo's module that is not live", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from finance.common.budget import plan")),
        "finance": FINANCE,
    }, refusal="repo 'finance' (live) has no finance/common/budget.py"),
    Case("main: a helper imported by a DAG has a broken import", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from marketing.include.helpers import window"), **{
            "include/helpers.py": "from include.constants import WINDOW\n"}),
    }, refusal="include/helpers.py line 1"),
    Case("main: a helper imported by a DAG does not compile", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from marketing.include.helpers import window"), **{
            "include/helpers.py": "def window(:\n", ".airflowignore": "include/\n"}),
    }, refusal="include/helpers.py: does not compile"),
    Case("main: a helper that mentions Airflow and DAGs is parsed as a DAG file", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl"), **{
            "include/naming.py": '"""Names of our Airflow DAGs."""\nfrom .constants import WINDOW\n'}),
    }, refusal="include/naming.py line 2"),
    Case("main: a repo name that is no identifier, whose files import each other", MAIN, "marketing-etl", {
        "marketing-etl": _marketing(with_dag("marketing_etl", "from include.helpers import window")),
    }, refusal="is not a Python identifier"),
    Case("main: a repo folder the standard library shadows", MAIN, "email", {
        "email": {"etl.py": with_dag("email_etl", "from email.templates import render"),
                  "templates.py": "def render():\n    return ''\n"},
    }, refusal="'email' is also the standard library"),
    Case("main: a module that is not installed", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("marketing_etl", "import not_installed_anywhere")},
    }, refusal="installedPackages", lists_installed=True),

    # ---- rule 1: imports, per-repo mode ----
    Case("per-repo: a module of the repo imported by the repo's name", PER_REPO, "churn", {
        "churn": {**CHURN, "churn.py": decorated_dag("churn_scores", "from churn.include.features import FEATURES")},
    }, refusal="write `from include.features import FEATURES`"),
    Case("per-repo: another repo's module", PER_REPO, "churn", {
        "churn": {**CHURN, "churn.py": decorated_dag("churn_scores", "from finance.common.calendar import period")},
        "finance": FINANCE_OWN_BUNDLE,
    }, refusal="'finance' is another repo of the deployment"),
    Case("per-repo: a relative import in a DAG file", PER_REPO, "churn", {
        "churn": {**CHURN, "churn.py": decorated_dag("churn_scores", "from .include.features import FEATURES")},
    }, refusal="write `from include.features import FEATURES`"),
    Case("per-repo: a module beside a DAG file in a folder", PER_REPO, "churn", {
        "churn": {"dags/churn.py": decorated_dag("churn_scores", "from features import FEATURES"),
                  "dags/features.py": "FEATURES = 1\n"},
    }, refusal="write `from dags.features import FEATURES`"),
    Case("per-repo: a top-level folder the standard library shadows", PER_REPO, "churn", {
        "churn": {"churn.py": decorated_dag("churn_scores", "from logging.setup import configure"),
                  "logging/setup.py": "def configure():\n    pass\n"},
    }, refusal="'logging' is also the standard library"),
    Case("per-repo: a module that is not installed", PER_REPO, "churn", {
        "churn": {"churn.py": decorated_dag("churn_scores", "import not_installed_anywhere")},
    }, refusal="installedPackages", lists_installed=True),

    # ---- rule 2: one dag_id, one file ----
    Case("main: two files of the repo define one dag_id", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("marketing_etl"), "etl_v2.py": decorated_dag("etl_v2", dag_id="marketing_etl")},
    }, refusal="dag_id 'marketing_etl' is defined in both etl.py and etl_v2.py"),
    Case("main: a dag_id another repo has live", MAIN, "marketing", {
        "marketing": {"etl.py": with_dag("finance_revenue")},
        "finance": FINANCE,
    }, refusal=f"already defined by repo 'finance' (commit {LIVE_COMMIT}) in revenue.py"),
    Case("per-repo: a dag_id another repo's bundle has", PER_REPO, "churn", {
        "churn": {"churn.py": decorated_dag("churn_scores", dag_id="finance_revenue")},
        "finance": {"revenue.py": decorated_dag("finance_revenue")},
    }, refusal=f"already defined by repo 'finance' (commit {LIVE_COMMIT}) in revenue.py"),
    Case("main: a package's __init__.py that a DAG's import runs is broken", MAIN, "marketing", {
        "marketing": _marketing(with_dag("marketing_etl", "from marketing.include.constants import WINDOW"), **{
            "include/__init__.py": "from include.helpers import window\n"}),
    }, refusal="include/__init__.py line 1"),
    Case("per-repo: two files of the repo define one dag_id", PER_REPO, "churn", {
        "churn": {"a.py": decorated_dag("churn_scores"), "b.py": with_dag("churn_scores")},
    }, refusal="dag_id 'churn_scores' is defined in both a.py and b.py"),
]
