"""Babel extraction method for this project (development only; imported by `pybabel` and tests).

It reads the syntax tree rather than the tokens, so that it finds every message:

- the first argument of each call of `_`, `gettext` and `N_`, and the two of `ngettext`, wherever
  the call is, inside an f-string's braces too (Babel's own Python extractor misses those);
- the texts click shows as help and that stay plain English in the source: the docstring of every
  function decorated as a command or group, and every `help=`, `short_help=` and `epilog=` string.

`python -m ledger.i18n_extract FILE` writes the template of the whole catalogue: those messages of
the source (as babel.cfg maps it) and click's own that a user of the CLI can meet, so that
`pybabel update` from it keeps every message the CLI shows (docs/translating.md).
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
HELP_KEYWORDS = ("help", "short_help", "epilog")
ROOT = Path(__file__).resolve().parents[1]
SKIPPED = ("tests", "build", "bench", "docs")
# click's modules whose messages a user of the CLI can meet (usage errors, help headings, types)
CLICK_MODULES = ("core.py", "decorators.py", "exceptions.py", "formatting.py", "parser.py", "types.py")


def extract(fileobj: Any, keywords: Any, comment_tags: Any, options: dict) -> Iterator[tuple]:
    source = fileobj.read()
    text = source.decode(options.get("encoding", "utf-8")) if isinstance(source, bytes) else source
    tree = ast.parse(text)
    yield from _calls(tree, keywords or KEYWORDS)
    yield from _help_texts(tree)


def _text(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _calls(tree: ast.AST, keywords: Any) -> Iterator[tuple]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in keywords:
            continue
        texts = [_text(arg) for arg in node.args[:2 if name == "ngettext" else 1]]
        if texts and all(texts):
            yield node.lineno, name, tuple(texts) if name == "ngettext" else texts[0], []


def _help_texts(tree: ast.AST) -> Iterator[tuple]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(map(_is_command, node.decorator_list)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield node.lineno, "", doc, []
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in HELP_KEYWORDS and isinstance(kw.value, ast.Constant) \
                        and isinstance(kw.value.value, str) and kw.value.value:
                    yield kw.value.lineno, "", _clean(kw.value.value), []


def _is_command(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name in ("command", "group")


def _clean(text: str) -> str:
    return inspect.cleandoc(text)


def source_messages(root: Path = ROOT) -> list[tuple]:
    """(file, line, message) of every message of the source, as babel.cfg maps it."""
    from babel.messages.extract import extract_from_dir  # noqa: PLC0415 - development only
    from babel.messages.frontend import parse_mapping_cfg  # noqa: PLC0415

    with open(root / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)

    def wanted(path: str) -> bool:
        base = os.path.basename(path)
        return not (base.startswith(".") or base in SKIPPED or base.endswith(".egg-info"))

    return [(file, line, message) for file, line, message, _c, _x
            in extract_from_dir(root, method_map, options_map, directory_filter=wanted)]


def click_messages() -> list[tuple]:
    """(file, line, message) of click's own messages (babel's Python extractor: `_`, `ngettext`)."""
    import click  # noqa: PLC0415
    from babel.messages.extract import extract_from_file  # noqa: PLC0415

    folder = Path(click.__file__).parent
    return [(f"click/{name}", line, message) for name in CLICK_MODULES
            for line, message, _c, _x in extract_from_file("python", folder / name)]


def main(argv: list[str]) -> None:
    from babel.messages.catalog import Catalog  # noqa: PLC0415
    from babel.messages.pofile import write_po  # noqa: PLC0415

    catalogue = Catalog(project="leadledger", charset="utf-8")
    for _file, _line, message in source_messages() + click_messages():
        catalogue.add(message)
    with open(argv[0], "wb") as f:  # no locations: line numbers in the catalogue would only churn
        write_po(f, catalogue, width=100, no_location=True)


if __name__ == "__main__":
    main(sys.argv[1:])
