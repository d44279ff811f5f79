"""No private attribute of another library anywhere in ``livemesh/`` or ``bench/``.

A private attribute of trio, trio-websocket, websockets, ssl or google-genai turns that library's
next release into a silent break of ours (a deadlock, a corrupted stream) rather than a clean
error. This test reads the source (``ast``, nothing is imported or run) and fails on:

* ``obj._name`` (read, written or called), and ``getattr``/``setattr``/``hasattr``/``delattr``
  with a literal ``"_name"``, where ``obj`` is not ``self``/``cls`` nor an object of ours;
* importing a private module or name of another package (``from pkg import _x``, ``pkg._x.y``).

How it decides whose ``obj`` is (the code has no runtime types to ask, so it infers, per scope):

1. ``self``/``cls``, dunder names (``__name__``) and a short list of underscore names that are
   documented public API (namedtuple's ``_replace``/``_asdict``/``_fields``/``_make``) are fine.
2. ``obj`` is *foreign* when its name is bound to an import from another package, annotated with
   such a type (a parameter, a variable, a class attribute read through ``self.x``), assigned
   from a call or attribute of something foreign, narrowed by ``isinstance`` to a foreign class,
   or an attribute reached through anything foreign (``stream.socket``). Builtin types count as
   foreign. Foreign: the access fails, whatever the name.
3. ``obj`` is *ours* when its name is bound, the same ways, to a class or function defined in
   ``livemesh/`` or ``bench/``: the access is fine.
4. Otherwise ``obj`` is *unknown* (``Any``, a loop variable): the access is fine if a class of
   the same file defines ``_name`` (a class and its helpers in one module), or if our code
   defines it elsewhere (an attribute assigned in, or declared by, one of our classes, or one of
   our module-level names) **and** none of the packages the file imports does (their installed
   sources are scanned the same way): an unknown ``session._ws`` fails because google-genai
   defines ``_ws``, even though one of our classes in another module does too.

A call's result is whose its function's is, except for a method of a class of the same file
called through ``self``, whose return annotation decides.

A snippet for each pattern the rule must catch, and for each it must let pass, is checked first
(``test_the_checker_catches_what_it_must``), so the rule itself cannot silently weaken.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import pathlib
import sys
from collections.abc import Iterable, Iterator
from typing import Final

import pytest

import livemesh

ROOT: Final = pathlib.Path(livemesh.__file__).parent.parent
TREES: Final = ("livemesh", "bench")
PUBLIC_UNDERSCORE: Final = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})
"""namedtuple's API: public, underscored only to stay out of the way of field names."""
_BUILTIN_TYPES: Final = frozenset(name for name, obj in vars(builtins).items() if isinstance(obj, type))
_ATTR_FUNCTIONS: Final = frozenset({"getattr", "setattr", "hasattr", "delattr"})

OURS, FOREIGN, UNKNOWN = "ours", "foreign", "unknown"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


# ------------------------------------------------------------------ names defined by a body of code


def _defined_private_names(tree: ast.AST) -> set[str]:
    """Underscore names a module defines: attributes assigned through ``self``/``cls``, class body
    names, ``__slots__`` entries, and module-level names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
        ):
            if node.value.id in ("self", "cls") and _private(node.attr):
                names.add(node.attr)
        elif isinstance(node, (ast.ClassDef, ast.Module)):
            for item in node.body:
                targets: list[ast.expr] = []
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    if _private(item.name):
                        names.add(item.name)
                elif isinstance(item, ast.Assign):
                    targets = item.targets
                elif isinstance(item, ast.AnnAssign):
                    targets = [item.target]
                for target in targets:
                    if isinstance(target, ast.Name) and _private(target.id):
                        names.add(target.id)
                    if (
                        isinstance(target, ast.Name)
                        and target.id == "__slots__"
                        and isinstance(item, ast.Assign)
                    ):
                        for element in ast.walk(item.value):
                            if isinstance(element, ast.Constant) and isinstance(element.value, str):
                                if _private(element.value):
                                    names.add(element.value)
    return names


@functools.cache
def _package_private_names(package: str) -> frozenset[str]:
    """The underscore names an installed package's own source defines (empty if not found)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return frozenset()
    if spec is None or spec.origin is None or spec.origin in ("built-in", "frozen"):
        return frozenset()
    origin = pathlib.Path(spec.origin)
    files = origin.parent.rglob("*.py") if origin.name == "__init__.py" else [origin]
    names: set[str] = set()
    for path in files:
        try:
            names |= _defined_private_names(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError):
            continue
    return frozenset(names)


# ------------------------------------------------------------------ the checker


class Checker:
    """Finds private accesses to other libraries in a set of our own source files."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.trees = {name: ast.parse(text) for name, text in sources.items()}
        self.own_modules = {pathlib.PurePath(name).stem for name in sources}
        self.own_names: set[str] = set()
        self.own_classes: set[str] = set()
        self.class_attributes: dict[str, dict[str, str]] = {}
        for tree in self.trees.values():
            self.own_names |= _defined_private_names(tree)
            for node in ast.walk(tree):
                if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.own_classes.add(node.name)

    def violations(self) -> Iterator[str]:
        for name, tree in sorted(self.trees.items()):
            yield from _File(self, name, tree).violations()

    def is_own_module(self, module: str) -> bool:
        root = module.split(".")[0]
        return root in TREES or root in self.own_modules or module.startswith(".")


class _File:
    def __init__(self, checker: Checker, name: str, tree: ast.Module) -> None:
        self.checker = checker
        self.name = name
        self.tree = tree
        self.imports: dict[str, tuple[str, bool]] = {}  # local name -> (origin, ours)
        self.packages: set[str] = set()
        self.module_values: dict[str, str] = {}
        self.class_attrs: dict[str, str] = {}
        self.local_names = _defined_private_names(tree)
        self.method_returns: dict[str, ast.expr | None] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.method_returns[item.name] = item.returns
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.imports[local] = (alias.name, checker.is_own_module(alias.name))
                    self._note_package(alias.name)
            elif isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                ours = node.level > 0 or checker.is_own_module(module)
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (f"{module}.{alias.name}", ours)
                self._note_package(module)
        for item in tree.body:
            if (
                isinstance(item, ast.Assign)
                and len(item.targets) == 1
                and isinstance(item.targets[0], ast.Name)
            ):
                self.module_values[item.targets[0].id] = self.kind(item.value, {})
        self.class_attrs = self._class_attributes()

    def _note_package(self, module: str) -> None:
        root = module.lstrip(".").split(".")[0]
        if root and not self.checker.is_own_module(module) and root != "__future__":
            self.packages.add(root)

    # -------------------------------------------------------------- classifying expressions

    def name_kind(self, name: str, scope: dict[str, str]) -> str:
        if name in scope:
            return scope[name]
        if name in self.imports:
            return OURS if self.imports[name][1] else FOREIGN
        if name in self.checker.own_classes:
            return OURS
        if name in _BUILTIN_TYPES:
            return FOREIGN
        return self.module_values.get(name, UNKNOWN)

    def kind(self, node: ast.expr | None, scope: dict[str, str]) -> str:
        """Whose object an expression (or a type annotation) evaluates to."""
        if node is None:
            return UNKNOWN
        if isinstance(node, ast.Name):
            return self.name_kind(node.id, scope)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and all(part.isidentifier() for part in node.value.split(".")):
                # "Peer": a forward reference to a class
                if self.kind(ast.parse(node.value, mode="eval").body, scope) == OURS:
                    return OURS
            return FOREIGN if isinstance(node.value, str | bytes | int | float) else UNKNOWN
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                return self.class_attrs.get(node.attr, UNKNOWN)
            base = self.kind(node.value, scope)
            if base == OURS and node.attr in self.class_attrs:
                return self.class_attrs[node.attr]  # an attribute of one of our objects
            return base if base != OURS or _is_module_path(node) else UNKNOWN
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "self"
                and func.attr in self.method_returns
            ):
                return self.kind(self.method_returns[func.attr], scope)
            return self.kind(func, scope)
        if isinstance(node, ast.Await):
            return self.kind(node.value, scope)
        if isinstance(node, ast.Subscript):  # list[Foo], Optional[Foo]: the parameter decides
            return self.kind(node.slice, scope) if self.kind(node.value, scope) != OURS else OURS
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # Foo | None
            kinds = {self.kind(node.left, scope), self.kind(node.right, scope)} - {"none"}
            return FOREIGN if FOREIGN in kinds else OURS if kinds == {OURS} else UNKNOWN
        if isinstance(node, ast.Tuple):
            kinds = {self.kind(element, scope) for element in node.elts}
            return FOREIGN if FOREIGN in kinds else OURS if kinds == {OURS} else UNKNOWN
        return UNKNOWN

    def _class_attributes(self) -> dict[str, str]:
        """``self.x`` -> whose, from every class of the file (annotations and assignments)."""
        found: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        _merge(found, item.target.id, self.kind(item.annotation, {}))
        for function in ast.walk(self.tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            scope = self.parameter_scope(function)
            for node in ast.walk(function):
                target, value = None, None
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target, value = node.targets[0], node.value
                elif isinstance(node, ast.AnnAssign):
                    target, value = node.target, node.annotation
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    _merge(found, target.attr, self.kind(value, scope))
        return found

    def parameter_scope(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str]:
        args = function.args
        scope: dict[str, str] = {}
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                scope[arg.arg] = self.kind(arg.annotation, {})
        return scope

    def local_scope(self, function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Module) -> dict[str, str]:
        scope = self.parameter_scope(function) if not isinstance(function, ast.Module) else {}
        for node in ast.walk(function):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                _merge(scope, node.target.id, self.kind(node.annotation, scope))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        _merge(scope, target.id, self.kind(node.value, scope))
            elif isinstance(node, ast.NamedExpr):
                _merge(scope, node.target.id, self.kind(node.value, scope))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name):
                        _merge(scope, item.optional_vars.id, self.kind(item.context_expr, scope))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
            ):
                if len(node.args) == 2 and isinstance(node.args[0], ast.Name):
                    _merge(scope, node.args[0].id, self.kind(node.args[1], scope))
        return scope

    # -------------------------------------------------------------- the verdicts

    def violations(self) -> Iterator[str]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if not self.checker.is_own_module(node.module):
                    private = [part for part in node.module.split(".") if _private(part)]
                    private += [alias.name for alias in node.names if _private(alias.name)]
                    if private:
                        what = ", ".join(private)
                        yield f"{self.name}:{node.lineno}: imports private {what} of {node.module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if not self.checker.is_own_module(alias.name) and any(
                        _private(part) for part in alias.name.split(".")
                    ):
                        yield f"{self.name}:{node.lineno}: imports private module {alias.name}"
        for scope_node, scope in self._scopes():
            for node in _own_nodes(scope_node):
                access = _access(node)
                if access is None:
                    continue
                base, attribute = access
                verdict = self.judge(base, attribute, scope)
                if verdict:
                    yield f"{self.name}:{node.lineno}: {ast.unparse(base)}.{attribute} ({verdict})"

    def _scopes(self) -> Iterator[tuple[ast.AST, dict[str, str]]]:
        yield self.tree, self.local_scope(self.tree)
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield node, self.local_scope(node)

    def judge(self, base: ast.expr, attribute: str, scope: dict[str, str]) -> str | None:
        if not _private(attribute) or attribute in PUBLIC_UNDERSCORE:
            return None
        if isinstance(base, ast.Name) and base.id in ("self", "cls"):
            return None
        kind = self.kind(base, scope)
        if kind == OURS:
            return None
        if kind == FOREIGN:
            return "another library's object"
        if attribute in self.local_names:
            return None
        if attribute not in self.checker.own_names:
            return "not an attribute of ours"
        shadowing = [
            package for package in sorted(self.packages) if attribute in _package_private_names(package)
        ]
        if shadowing:
            return f"of an object of unknown type, and {', '.join(shadowing)} defines it"
        return None


def _merge(scope: dict[str, str], name: str, kind: str) -> None:
    """A name bound several ways is foreign if any way is, ours only if every way is."""
    before = scope.get(name)
    if before is None or kind == FOREIGN or (before == UNKNOWN and kind == OURS):
        scope[name] = kind


def _is_module_path(node: ast.Attribute) -> bool:
    value: ast.expr = node
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name)


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a scope, not descending into nested functions (their own scope)."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _access(node: ast.AST) -> tuple[ast.expr, str] | None:
    if isinstance(node, ast.Attribute):
        return node.value, node.attr
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _ATTR_FUNCTIONS
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    ):
        return node.args[0], node.args[1].value
    return None


def _sources(trees: Iterable[str] = TREES) -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for tree in trees
        for path in sorted((ROOT / tree).rglob("*.py"))
    }


# ------------------------------------------------------------------ the tests

_MUST_FAIL = {
    "annotated parameter": "import trio\ndef f(stream: trio.SSLStream) -> None:\n"
    "    stream._ssl_object.read()\n",
    "getattr with a literal": "import trio\ndef f(stream: trio.SSLStream) -> object:\n"
    "    return getattr(stream, '_incoming', None)\n",
    "a write to state our code names too": "import trio\nclass Ours:\n    def __init__(self) -> None:\n"
    "        self._state = 1\ndef f(stream: trio.SSLStream, broken: object) -> None:\n"
    "    stream._state = broken\n",
    "through an attribute of ours": "import trio\nclass Tls:\n"
    "    def __init__(self, stream: trio.SSLStream) -> None:\n        self.stream = stream\n"
    "    def bump(self) -> None:\n        self.stream._inner_recv_count += 1\n",
    "an attribute chain": "import trio\ndef f(stream: trio.SocketStream) -> object:\n"
    "    return getattr(stream.socket, '_sock', None)\n",
    "isinstance narrowing": "import trio\ndef f(stream: object) -> None:\n"
    "    if isinstance(stream, trio.SSLStream):\n        stream._handshook.done\n",
    "an unknown object with a name the library defines (ours elsewhere)": "from typing import Any\n"
    "import google.genai\ndef f(session: Any) -> None:\n    session._ws.send\n",
    "a private function of a module": "from google.genai import live_converters\n"
    "def f(x: object) -> object:\n    return live_converters._LiveServerMessage_from_mldev(x)\n",
    "a private module": "from google.genai import _common\n",
    "a private classmethod": "from google.genai import types\ndef f() -> object:\n"
    "    return types.LiveServerMessage._from_response(response={}, kwargs={})\n",
    "an unknown object with a name nobody of ours defines": "def f(thing):\n    return thing._secret\n",
}

_MUST_PASS = {
    "self and cls": "class A:\n    _n = 0\n    def __init__(self) -> None:\n        self._x = 1\n"
    "    @classmethod\n    def make(cls) -> int:\n        return cls._n\n",
    "an object of ours": "class Conn:\n    def __init__(self) -> None:\n        self._absorb = 1\n"
    "def f(conn: Conn) -> int:\n    return conn._absorb\n",
    "made by our class": "class Conn:\n    def _flush(self) -> None: ...\ndef f() -> None:\n"
    "    conn = Conn()\n    conn._flush()\n",
    "dunders and namedtuple": "import collections\nP = collections.namedtuple('P', 'x')\n"
    "def f(p: object) -> object:\n    return p.__class__, P(1)._replace(x=2)\n",
}


_ELSEWHERE = (
    "class Conn:\n    def __init__(self) -> None:\n        self._ws = None\n        self._state = 0\n"
)
"""Another of our modules, defining names the snippets use."""


@pytest.mark.parametrize("snippet", list(_MUST_FAIL))
def test_the_checker_catches_what_it_must(snippet: str) -> None:
    found = list(Checker({"snippet.py": _MUST_FAIL[snippet], "elsewhere.py": _ELSEWHERE}).violations())
    assert [line for line in found if line.startswith("snippet.py")], snippet


@pytest.mark.parametrize("snippet", list(_MUST_PASS))
def test_the_checker_lets_our_own_code_pass(snippet: str) -> None:
    assert list(Checker({"snippet.py": _MUST_PASS[snippet]}).violations()) == [], snippet


def test_no_private_attribute_of_another_library_in_livemesh_or_bench() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    found = list(Checker(_sources()).violations())
    assert found == [], "\n".join(found)
