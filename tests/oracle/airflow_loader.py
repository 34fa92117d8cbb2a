"""Loads bundles with Airflow's own code, as its dag processor does; run by the Airflow tool environment's Python.

Reads {"bundles": {"<name>": "<bundle root>", ...}} on stdin and writes to the file named by its argument (Airflow
logs to stdout), for each bundle, the files Airflow lists
(`list_py_file_paths`, safe mode: nested .airflowignore files and the heuristic) and, for each, the dag_ids it
defines and its import errors (`BundleDagBag` per file, then serialization, as `airflow dag-processor` does).
Each file is parsed in a forked child of a parent that imported Airflow once, as the dag processor forks.
Also writes `installed`: every top-level module importable here, what `installedPackages` would list.
"""

import gc
import json
import logging
import os
import pkgutil
import sys
import traceback
from pathlib import Path

import airflow
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import _serialize_dags
from airflow.utils.file import list_py_file_paths

# What DAG files import, imported before forking so that each child starts warm.
import airflow.providers.common.sql.operators.sql  # noqa: F401
import airflow.providers.standard.operators.empty  # noqa: F401
import airflow.providers.standard.operators.python  # noqa: F401
import airflow.sdk  # noqa: F401

PARALLEL = 2


def parse_file(path: str, root: str) -> dict:
    try:
        bag = BundleDagBag(dag_folder=path, bundle_path=Path(root), load_op_links=False)
        _, serialization_errors = _serialize_dags(bag, logging.getLogger("oracle"))
        errors = {**bag.import_errors, **serialization_errors}
        return {"dag_ids": sorted(bag.dag_ids), "import_errors": [str(error)[-2000:] for error in errors.values()]}
    except BaseException:  # the child reports whatever kills it
        return {"dag_ids": [], "import_errors": [traceback.format_exc()[-2000:]]}


def start(path: str, root: str) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        result = json.dumps(parse_file(path, root)).encode()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(result)
        os._exit(0)
    os.close(write_end)
    return pid, read_end


def finish(pid: int, read_end: int) -> dict:
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data) if data else {"dag_ids": [], "import_errors": ["the parsing process died"]}


def main() -> None:
    bundles = json.load(sys.stdin)["bundles"]
    jobs = [(name, root, path) for name, root in bundles.items() for path in list_py_file_paths(root, safe_mode=True)]
    results: dict[str, dict] = {name: {} for name in bundles}
    gc.freeze()
    running: list[tuple[str, str, str, int, int]] = []
    for name, root, path in jobs:
        running.append((name, root, path, *start(path, root)))
        if len(running) >= PARALLEL:
            done = running.pop(0)
            results[done[0]][os.path.relpath(done[2], done[1])] = finish(*done[3:])
    for done in running:
        results[done[0]][os.path.relpath(done[2], done[1])] = finish(*done[3:])
    installed = sorted({module.name for module in pkgutil.iter_modules()} | set(sys.builtin_module_names))
    report = {"version": airflow.__version__, "bundles": results, "installed": installed}
    Path(sys.argv[1]).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
