"""The shape of the code, enforced: what issue 15 took apart must not grow back.

* no module in ``src/shiren`` over 600 lines (a module that long holds more than one idea);
* every HTTP route is a thin translation: its body (after the docstring) at most 25 lines, and
  no ``Any`` in its signature (request bodies, parameters and the response are typed models).

Import cycles inside packages are the ``acyclic_siblings`` contract in pyproject.toml
(``lint-imports``, part of ``make check``).  These read the source (``ast``): nothing is
imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "shiren"
MAX_MODULE_LINES = 600
MAX_ROUTE_BODY_LINES = 25
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "api_route", "head", "options"}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_the_source_is_where_the_test_looks() -> None:
    assert (SRC / "service" / "app.py").is_file()
    assert len(_modules()) > 100


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_is_over_600_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(SRC)}: {lines} lines"


def _is_route(node: ast.AST) -> bool:
    """A function decorated with ``@<router or app>.<http method>(...)``."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    for deco in node.decorator_list:
        call = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(call, ast.Attribute) and call.attr in HTTP_METHODS:
            return True
    return False


def _routes() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted((SRC / "api").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if _is_route(node):
                assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                found.append((f"{path.relative_to(SRC)}:{node.name}", node))
    return found


ROUTES = _routes()


def test_routes_are_found() -> None:
    assert len(ROUTES) >= 30  # every /v1 resource, the capture API, the console, ops


def _body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring documents, it does not do
    if not body:
        return 0
    end = max(getattr(n, "end_lineno", n.lineno) or n.lineno for n in body)
    return end - body[0].lineno + 1


def _mentions_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    return any(
        (isinstance(n, ast.Name) and n.id == "Any")
        or (isinstance(n, ast.Attribute) and n.attr == "Any")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and "Any" in n.value)
        for n in ast.walk(annotation)
    )


@pytest.mark.parametrize(("name", "fn"), ROUTES, ids=[name for name, _ in ROUTES])
def test_route_is_thin_and_typed(name: str, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    assert _body_lines(fn) <= MAX_ROUTE_BODY_LINES, f"{name}: {_body_lines(fn)} lines"
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    for extra in (fn.args.vararg, fn.args.kwarg):
        if extra is not None:
            args.append(extra)
    untyped = [a.arg for a in args if _mentions_any(a.annotation)]
    assert not untyped, f"{name}: Any in the parameters {untyped}"
    assert not _mentions_any(fn.returns), f"{name}: returns Any"


def test_the_checks_can_fail() -> None:
    """The detectors catch what they are for (a test that cannot fail proves nothing)."""
    fat = ast.parse(
        "@router.get('/x')\nasync def r(a: Any) -> dict[str, Any]:\n"
        + "".join(f"    x{i} = {i}\n" for i in range(30))
    ).body[0]
    assert isinstance(fat, ast.AsyncFunctionDef)
    assert _is_route(fat)
    assert _body_lines(fat) == 30
    assert fat.args.args[0].annotation is not None
    assert _mentions_any(fat.args.args[0].annotation)
    assert _mentions_any(fat.returns)
    plain = ast.parse("def f(a: int) -> str:\n    return ''\n").body[0]
    assert not _is_route(plain)
