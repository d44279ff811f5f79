"""The documentation stays user documentation, and the API reference stays complete.

* Docstrings and comments under ``livemesh/`` name only files that exist in this repository and
  cite public sources, never private notes or internal work items ("issue 7", "this stop").
* README.md, bench/README.md and the pages under docs/ read as user documentation: no diary
  words, and every relative link points at a file that exists.
* The API reference (docs/reference/) renders every public name of ``livemesh``,
  ``livemesh.emulator`` and ``livemesh.redis``; ``mkdocs build --strict`` (.ci/docs) checks that
  each reference resolves and that each documented parameter exists.
"""

from __future__ import annotations

import ast
import importlib
import io
import re
import tokenize
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "livemesh"
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

_SKIPPED_DIRS = {".git", "site", "__pycache__", "node_modules"}


def _repository_files() -> set[str]:
    """Every file of the work tree (relative POSIX paths), virtual environments and builds aside."""
    found = set()
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if any(part in _SKIPPED_DIRS or part.startswith(".venv") for part in parts):
            continue
        if path.is_file():
            found.add("/".join(parts))
    return found


FILES = _repository_files()

# Internal references: notes outside the repository and work items. Public sources (a GitHub
# thread such as ``sip-to-ai#14``, a docs page) are what a docstring cites instead.
INTERNAL = [
    (re.compile(r"STYLE\.md|DESIGN\.md|LIVE_API_NOTES", re.I), "a private notes file"),
    (re.compile(r"\.\./shared|/work/|~/|\bnotes/"), "a private path"),
    (re.compile(r"\bissue\s*#?\s*\d+", re.I), "an internal work item (issue N)"),
    (re.compile(r"\bhabit\s+\d+", re.I), "a private style guide's habit"),
    (re.compile(r"\b(?:this|that|previous|earlier|last|next)\s+stops?\b", re.I), "a work stop"),
    (re.compile(r"\bstops?\s+of\s+\d{4}|\bend of (?:the|this) stop\b", re.I), "a work stop"),
    (re.compile(r"\b(?:this|that|previous|earlier|last|next)\s+round\b(?![\s-]+trip)", re.I), "a work round"),
    (re.compile(r"\bround\s+(?:one|two|three|four)\b", re.I), "a work round"),
    (re.compile(r"\bother engineers\b|\bthe lead\b", re.I), "how work is organised here"),
]

# Diary words that have no place in user documentation (the history of figures lives in git).
DIARY = [
    *INTERNAL,
    (re.compile(r"\breverted\b|\bdown from\b|\bfindings so far\b", re.I), "history"),
    (re.compile(r"\bat the time of writing\b|\bfollow-up\b|\bmid-change\b", re.I), "history"),
]

# A file named in prose: a path or a bare name ending in a source or documentation extension.
FILE_NAME = re.compile(
    r"(?<![\w/.-])((?:\.{1,2}/)?[\w-]+(?:[./][\w-]+)*\.(?:md|py|toml|ya?ml|cfg|ini|sh|rst))\b"
)


def _names_a_repository_file(name: str) -> bool:
    """``bench/codec.py`` must exist from the root; a bare ``ledger.py`` anywhere in the tree."""
    if name.startswith(("./", "../")):
        return False  # relative to an unknown place
    if "/" in name:
        return name in FILES or any(f.endswith("/" + name) for f in FILES)
    return any(f == name or f.endswith("/" + name) for f in FILES)


def _docstrings_and_comments(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every docstring (module, class, function, attribute) and comment."""
    source = path.read_text(encoding="utf-8")
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.append((node.lineno, node.value.value))
    return sorted(found)


def _problems(text: str, rules: list[tuple[re.Pattern[str], str]]) -> list[tuple[int, str]]:
    """(line offset within ``text``, what is wrong) for every rule that matches."""
    found = [
        (m.start(), f"{what}: {m.group(0)!r}") for pattern, what in rules for m in pattern.finditer(text)
    ]
    found += [
        (m.start(), f"names a file that is not in the repository: {m.group(1)!r}")
        for m in FILE_NAME.finditer(text)
        if not _names_a_repository_file(m.group(1))
    ]
    return sorted((text.count("\n", 0, start), problem) for start, problem in found)


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_docstrings_and_comments_cite_only_public_sources(path: Path) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line + offset}: {problem}"
        for line, text in _docstrings_and_comments(path)
        for offset, problem in _problems(text, INTERNAL)
    ]
    assert not found, "\n".join(found)


def test_the_checks_catch_what_they_promise() -> None:
    """Each rule fires on an example of what it forbids and stays quiet on ordinary prose."""
    bad = [
        "see STYLE.md habit 9",
        "LIVE_API_NOTES 1.9",
        "../shared/LIVE_API_NOTES.md section 1",
        "measured in /work/notes/emu_cpu.md",
        "(issue 7)",
        "figures of this stop",
        "in the previous stop",
        "this round's commits",
        "round two's figures",
        "bench/nope.py",
        "see FOO.md",
    ]
    for text in bad:
        assert _problems(text, INTERNAL), text
    good = [
        "errors stop at this connection",
        "one round trip",
        "this round trip",
        "a scheduling round per call",
        "bench/codec.py measures it",
        "the scripted model (model.py)",
        "pongs took 8-30 s (sip-to-ai#14)",
        "each round's ratio",
    ]
    for text in good:
        assert not _problems(text, INTERNAL), text


# --------------------------------------------------------------------------- user documentation

PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted(DOCS.rglob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCED = re.compile(r"^```.*?^```$", re.M | re.S)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_pages_are_user_documentation(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    prose = _FENCED.sub("", text)
    found = [f"{page.relative_to(ROOT)}: {problem}" for _, problem in _problems(prose, DIARY)]
    for target in _LINK.findall(prose):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # an absolute URL or an anchor on the same page
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        if not resolved.exists():
            found.append(f"{page.relative_to(ROOT)}: broken link {target!r}")
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- API reference

MODULES = ["livemesh", "livemesh.emulator", "livemesh.redis"]
_DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.M)


def _public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None) or [
        name for name, value in vars(module).items() if not isinstance(value, types.ModuleType)
    ]
    return [name for name in names if not name.startswith("_")]


def _resolve(dotted: str) -> object:
    """The object a ``::: dotted.path`` directive renders (module, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


def _rendered() -> list[str]:
    pages = sorted(REFERENCE.glob("*.md"))
    return [m.group(1) for page in pages for m in _DIRECTIVE.finditer(page.read_text(encoding="utf-8"))]


def test_reference_renders_every_public_name() -> None:
    rendered = _rendered()
    assert len(rendered) == len(set(rendered)), "a name is rendered twice"
    objects = [_resolve(path) for path in rendered]
    missing = [
        f"{module_name}.{name}"
        for module_name in MODULES
        for name in _public_names(importlib.import_module(module_name))
        if f"{module_name}.{name}" not in rendered
        and not any(getattr(importlib.import_module(module_name), name) is obj for obj in objects)
    ]
    assert not missing, f"public names the API reference does not render: {missing}"


def test_reference_pages_are_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted(DOCS.rglob("*.md")):
        assert str(page.relative_to(DOCS)) in nav, f"{page.relative_to(ROOT)} is not in mkdocs.yml's nav"
