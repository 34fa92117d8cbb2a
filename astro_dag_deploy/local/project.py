"""Where the project's own folders are: the local mode runs the checkout it is installed from (editable)."""

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = PROJECT_ROOT / "functions"
EXAMPLES_DIR = PROJECT_ROOT / "examples"
DEFAULT_SCENARIO = EXAMPLES_DIR / "scenario.json"


def require_checkout() -> None:
    """Fail clearly when the package is not run from a project checkout (the handlers live beside it)."""
    if not (FUNCTIONS_DIR / "shared").is_dir() or not (PROJECT_ROOT / "cdk").is_dir():
        raise RuntimeError(
            f"the local mode needs the project checkout (functions/ and cdk/ next to astro_dag_deploy/), "
            f"not found under {PROJECT_ROOT}: install the project with `pip install -e .`"
        )


def make_functions_importable() -> None:
    """Put functions/ first on sys.path, as it is the root of every Lambda asset (`shared`, `parse`, ...)."""
    require_checkout()
    entry = str(FUNCTIONS_DIR)
    if not sys.path or sys.path[0] != entry:
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
