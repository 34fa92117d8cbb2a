"""Where the project's own folders are: the local mode runs the checkout it is installed from (editable)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = PROJECT_ROOT / "functions"
EXAMPLES_DIR = PROJECT_ROOT / "examples"
DEFAULT_SCENARIO = EXAMPLES_DIR / "scenario.json"
