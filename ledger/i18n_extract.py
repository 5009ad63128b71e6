"""Babel extraction method for this project (development only; imported by `pybabel` and tests).

Besides the calls of `_` / `ngettext` / `gettext` / `N_` that Babel's Python extractor finds, it takes
the texts click shows as help and that stay plain English in the source: the docstring of every
function decorated as a command or group, and every `help=`, `short_help=` and `epilog=` string.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from typing import Any

from babel.messages.extract import extract_python

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
HELP_KEYWORDS = ("help", "short_help", "epilog")


def extract(fileobj: Any, keywords: Any, comment_tags: Any, options: dict) -> Iterator[tuple]:
    source = fileobj.read()
    fileobj.seek(0)
    yield from extract_python(fileobj, keywords, comment_tags, options)
    text = source.decode(options.get("encoding", "utf-8")) if isinstance(source, bytes) else source
    yield from _help_texts(ast.parse(text))


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
