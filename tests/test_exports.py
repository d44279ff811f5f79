"""The top-level namespace is curated: every public name resolves and is documented (trio's habit)."""

import importlib

import livemesh


def public_names(module: object) -> list[str]:
    return [name for name in vars(module) if not name.startswith("_")]


def test_top_level_names_resolve_and_have_docstrings() -> None:
    submodules = {"auth", "errors", "limits", "pool", "rest", "session", "wire", "transport", "endpoints"}
    for name in public_names(livemesh):
        if name in submodules:
            continue
        obj = getattr(livemesh, name)
        if name in {"Auth", "DEFAULT_LIMITS", "HandleHook"}:
            continue  # type aliases and a value
        assert getattr(obj, "__doc__", None), f"livemesh.{name} has no docstring"


def test_subpackages_import_alone() -> None:
    for module in ("livemesh.wire", "livemesh.emulator", "livemesh.bench.cli", "livemesh.__main__",
                   "livemesh.redis", "livemesh.chat", "livemesh.aio", "livemesh.testing"):
        importlib.import_module(module)


def test_wire_is_sans_io() -> None:
    """The protocol core imports no I/O layer (h11/wsproto habit): checked on its source."""
    import ast
    import pathlib

    wire_dir = pathlib.Path(livemesh.__file__).parent / "wire"
    forbidden = {"trio", "trio_websocket", "httpx", "socket", "ssl", "livemesh.transport", "livemesh.session"}
    for path in wire_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden and name not in forbidden, (path.name, name)
