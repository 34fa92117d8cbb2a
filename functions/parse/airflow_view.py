"""The request's files as Airflow will see them in the deployment: which it parses as DAG files, whether their
imports resolve in the bundle, and whether their dag_ids are the deployment's only ones (each rule, its message and
its fix: README, "What Parse checks as Airflow would").
"""

from collections.abc import Mapping, Sequence
from dataclasses import field

from functions.shared.bundle_layout import BundleLayout, PythonFile, import_problems
from functions.shared.dag_discovery import IgnoreRules, describe_rule
from functions.shared.dag_ids import DagFileIds, live_dag_id_problems, repo_dag_id_problems
from functions.shared.dag_source import DagSource
from functions.shared.live_repos import LiveRepo
from functions.shared.records import FrozenRecord, Record


class PythonSource(FrozenRecord):
    """What Parse read of one `.py` file of the request."""

    path: str
    declared_dag: bool  # listed in body.dags
    mentions_dag: bool  # passes safe mode's test
    found: DagSource | None  # None when it does not compile
    compile_error: str | None = None


class AirflowView(Record):
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dag_files: set[str] = field(default_factory=set)  # the files Airflow parses that define DAGs


def airflow_view(
    layout: BundleLayout, sources: Sequence[PythonSource], ignore_files: Mapping[str, str], live: Sequence[LiveRepo],
) -> AirflowView:
    view = AirflowView()
    rules = IgnoreRules(ignore_files)
    parsed: dict[str, PythonFile] = {}
    for source in sources:
        rule = rules.ignored_by(source.path)
        airflow_parses = rule is None and source.mentions_dag
        if source.declared_dag and not airflow_parses:
            why = f"ignored by {describe_rule(rule)}" if rule else "it does not mention both 'airflow' and 'dag' " \
                                                                    "(safe mode's test)"
            view.problems.append(f"{source.path}: declared as a DAG file, but Airflow will not parse it: {why}")
        if source.found is not None:
            parsed[source.path] = PythonFile(source.path, source.found, airflow_parses)
            if airflow_parses and source.found.defines_dag:
                view.dag_files.add(source.path)
    imports = import_problems(layout, parsed)
    view.problems += imports.problems
    view.warnings += imports.warnings
    for source in sources:
        if source.compile_error is None or source.declared_dag:  # a declared one is refused as it is read
            continue
        airflow_parses = source.mentions_dag and rules.ignored_by(source.path) is None
        airflow_runs = airflow_parses or source.path in imports.reached
        if airflow_runs:
            view.problems.append(f"{source.path}: does not compile: {source.compile_error}")
        else:
            view.warnings.append(f"{source.path}: does not compile ({source.compile_error}); Airflow never imports "
                                 f"it (not a DAG file it parses, imported by none): fine until something does")
    own = [DagFileIds(path, parsed[path].source.dag_ids) for path in sorted(view.dag_files)]
    view.problems += repo_dag_id_problems(own)
    view.problems += live_dag_id_problems(own, [dag_file for repo in live for dag_file in repo.dag_files])
    for path in sorted(view.dag_files):
        for line in parsed[path].source.dynamic_dag_id_lines:
            view.warnings.append(f"{path} line {line}: the dag_id is computed when Airflow parses the file, so it "
                                 f"cannot be checked against the deployment's other dag_ids: keep it unique")
    return view
