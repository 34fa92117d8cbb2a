"""One dag_id, one file, in the whole deployment: Airflow's dag_ids are global across its Dag bundles.

Two files defining one dag_id give no error in Airflow: the file parsed last wins and the other DAG silently
disappears. Parse refuses a request whose DAG files reuse a dag_id of another file of the repo or of another repo's
live files; since other repos ship concurrently, Snapshot checks the live repos again once the lock is held.
Only literal ids can be compared; a computed one is a warning.
"""

from collections.abc import Iterable, Sequence

from functions.shared.errors import DagIdTaken
from functions.shared.execution_state import RunScope
from functions.shared.live_repos import LiveDagFile, read_live_repos
from functions.shared.plan_store import load_plan
from functions.shared.records import FrozenRecord


# How many files a problem names when many files define one dag_id.
FILES_NAMED = 5


class DagFileIds(FrozenRecord):
    path: str  # in the repo
    dag_ids: Sequence[str]


def _other_repo_file(dag_file: LiveDagFile) -> str:
    commit = f"commit {dag_file.commit}" if dag_file.commit else "no commit recorded"
    return f"repo {dag_file.repo!r} ({commit}) in {dag_file.path}"


def repo_dag_id_problems(files: Iterable[DagFileIds]) -> list[str]:
    """A dag_id that several files of the repo define: one problem per dag_id, naming the files."""
    defined_in: dict[str, list[str]] = {}
    for file in sorted(files, key=lambda file: file.path):
        for dag_id in file.dag_ids:
            defined_in.setdefault(dag_id, []).append(file.path)
    problems = []
    for dag_id, paths in defined_in.items():
        if len(paths) == 2:
            where = f"both {paths[0]} and {paths[1]}"
        elif len(paths) > 2:
            shown = ", ".join(paths[:FILES_NAMED])
            where = f"{len(paths)} files: {shown}" + (f" and {len(paths) - FILES_NAMED} more" if len(paths) >
                                                       FILES_NAMED else "")
        else:
            continue
        problems.append(f"dag_id {dag_id!r} is defined in {where}: Airflow keeps only one of them (the file it "
                        f"parses last) and the other DAGs disappear: give each its own dag_id")
    return problems


def live_dag_id_problems(files: Iterable[DagFileIds], live: Iterable[LiveDagFile]) -> list[str]:
    """A dag_id of the repo that another repo's live files already define."""
    defined_by = {dag_id: dag_file for dag_file in live for dag_id in dag_file.dag_ids}
    return [
        f"{file.path}: dag_id {dag_id!r} is already defined by {_other_repo_file(defined_by[dag_id])}: dag_ids are "
        f"global in an Airflow deployment, one of the two DAGs would disappear: rename it (or remove it there first)"
        for file in sorted(files, key=lambda file: file.path)
        for dag_id in file.dag_ids
        if dag_id in defined_by
    ]


def check_dag_ids_still_free(bucket: str, scope: RunScope) -> int:
    """Once the lock is held: the plan's dag_ids against what the other repos have live now (DagIdTaken if taken).

    Returns how many dag_ids were checked.
    """
    plan = load_plan(bucket, scope.execution)
    files = [DagFileIds(entry.path, entry.dag_ids) for entry in plan.files if entry.dag_ids]
    if not files:
        return 0
    live = [dag_file for repo in read_live_repos(bucket, scope.workspace, scope.deployment, scope.repo)
            for dag_file in repo.dag_files]
    problems = live_dag_id_problems(files, live)
    if problems:
        raise DagIdTaken(problems)
    return sum(len(file.dag_ids) for file in files)
