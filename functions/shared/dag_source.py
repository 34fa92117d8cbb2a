"""What a Python file says about DAGs and imports, read from its syntax tree without importing Airflow."""

import ast
import threading
from dataclasses import field

from functions.shared.records import FrozenRecord, Record


# CPython keeps one AST recursion counter per interpreter, not per thread: a thread switch inside another thread's
# compile now and then fails it with "SystemError: AST constructor recursion depth mismatch" (seen in our end-to-end
# tests on 3.11; cpython gh-106905 and its kin), and Parse reads sources in threads. Compiling holds the GIL
# anyway, so one at a time costs nothing; the S3 reads stay parallel.
_compiler = threading.Lock()

# Handlers that catch a failed import: an import inside their `try` may fail without failing the file.
_IMPORT_ERROR_CATCHERS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


class ImportedModule(FrozenRecord):
    """One import statement: `import module` (no names) or `from <level dots>module import names`."""

    module: str  # dotted, without the leading dots of a relative import ("" for `from . import x`)
    names: tuple[str, ...] = ()
    level: int = 0  # leading dots: 0 for an absolute import
    line: int = 0
    # Whether importing the file runs it (module level, class bodies), rather than a function that runs later.
    at_import: bool = True
    # Inside a `try` that catches ImportError, or under `if TYPE_CHECKING:`: a failure does not fail the file.
    guarded: bool = False

    @property
    def statement(self) -> str:
        if not self.names:
            return f"import {self.module}"
        return f"from {'.' * self.level}{self.module} import {', '.join(self.names)}"


class DagSource(Record):
    defines_dag: bool
    dag_ids: list[str] = field(default_factory=list)
    # Lines of DAG definitions whose dag_id is computed (not a literal): their ids are known only to Airflow.
    dynamic_dag_id_lines: list[int] = field(default_factory=list)
    imports: list[ImportedModule] = field(default_factory=list)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _dag_id_argument(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "dag_id":
            return keyword.value
    return call.args[0] if call.args else None


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_type_checking(test: ast.expr) -> bool:
    return _name(test) == "TYPE_CHECKING"


def _catches_import_errors(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(_name(node) in _IMPORT_ERROR_CATCHERS for node in caught)


def _imports(body: list[ast.stmt], at_import: bool, guarded: bool) -> list[ImportedModule]:
    """The imports of a block, knowing whether importing the file runs them and whether a failure is caught."""
    found = []
    for node in body:
        if isinstance(node, ast.Import):
            found += [ImportedModule(alias.name, (), 0, node.lineno, at_import, guarded) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            found.append(ImportedModule(node.module or "", names, node.level, node.lineno, at_import, guarded))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += _imports(node.body, False, guarded)
        elif isinstance(node, ast.Try | ast.TryStar):
            catches = any(_catches_import_errors(handler) for handler in node.handlers)
            found += _imports(node.body, at_import, guarded or catches)
            for block in (*[handler.body for handler in node.handlers], node.orelse, node.finalbody):
                found += _imports(block, at_import, guarded)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            found += _imports(node.body, at_import, True)
            found += _imports(node.orelse, at_import, guarded)
        else:
            for block in ("body", "orelse", "finalbody"):
                found += _imports(getattr(node, block, None) or [], at_import, guarded)
            for case in getattr(node, "cases", None) or []:
                found += _imports(case.body, at_import, guarded)
    return found


def inspect_dag_source(source: str | bytes, filename: str = "<dag>") -> DagSource:
    """Compile `source` (raising SyntaxError as Python would) and find its DAG definitions and imports.

    A DAG definition is a call to `DAG(...)` (any module path) or a function decorated with `@dag`/`@dag(...)`.
    Literal ids come from `dag_id=` or the first argument; a decorated function without one is named after it.
    """
    # A full compile raises every SyntaxError Python would at import; the AST alone misses some.
    with _compiler:
        compile(source, filename, "exec", dont_inherit=True)
        tree = ast.parse(source, filename)
    defines_dag = False
    dag_ids: list[str] = []
    dynamic_lines: list[int] = []

    def found(dag_id: str | None, line: int) -> None:
        if dag_id is None:
            dynamic_lines.append(line)
        else:
            dag_ids.append(dag_id)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) == "DAG":
            defines_dag = True
            found(_literal(_dag_id_argument(node)), node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                if _name(call.func if call else decorator) == "dag":
                    defines_dag = True
                    argument = _dag_id_argument(call) if call else None
                    found(node.name if argument is None else _literal(argument), node.lineno)
    return DagSource(
        defines_dag=defines_dag, dag_ids=list(dict.fromkeys(dag_ids)), dynamic_dag_id_lines=dynamic_lines,
        imports=_imports(tree.body, True, False),
    )
