"""What a Python file says about DAGs, read from its syntax tree without importing Airflow."""

import ast
import threading
from dataclasses import dataclass, field


# CPython keeps one AST recursion counter per interpreter, not per thread: a thread switch inside another thread's
# compile now and then fails it with "SystemError: AST constructor recursion depth mismatch" (seen in our end-to-end
# tests on 3.11; cpython gh-106905 and its kin), and Parse reads sources in threads. Compiling holds the GIL
# anyway, so one at a time costs nothing; the S3 reads stay parallel.
_compiler = threading.Lock()


@dataclass
class DagSource:
    defines_dag: bool
    dag_ids: list[str] = field(default_factory=list)


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _literal_dag_id(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "dag_id" and isinstance(keyword.value, ast.Constant):
            return keyword.value.value if isinstance(keyword.value.value, str) else None
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def inspect_dag_source(source: str | bytes, filename: str = "<dag>") -> DagSource:
    """Compile `source` (raising SyntaxError as Python would) and find its DAG definitions.

    A DAG definition is a call to `DAG(...)` (any module path) or a function decorated with `@dag`/`@dag(...)`.
    Literal ids come from `dag_id=` or the first argument; a decorated function without one is named after it.
    """
    # A full compile raises every SyntaxError Python would at import; the AST alone misses some.
    with _compiler:
        compile(source, filename, "exec", dont_inherit=True)
        tree = ast.parse(source, filename)
    defines_dag = False
    dag_ids: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) == "DAG":
            defines_dag = True
            dag_id = _literal_dag_id(node)
            if dag_id is not None:
                dag_ids.append(dag_id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                if _name(call.func if call else decorator) == "dag":
                    defines_dag = True
                    dag_ids.append((_literal_dag_id(call) if call else None) or node.name)
    return DagSource(defines_dag=defines_dag, dag_ids=list(dict.fromkeys(dag_ids)))
