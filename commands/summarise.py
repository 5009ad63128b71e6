"""Writes commands/summaries.py: every command's module and its short help, taken from the
commands themselves, so that `--help` lists them without importing them.

    python -m commands.summarise          # after adding a command or changing a docstring

tests/cli/test_startup.py fails while the file written differs from what this makes.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import textwrap
from pathlib import Path

import commands

TARGET = Path(__file__).with_name("summaries.py")
HEAD = '''"""Every command: the module of commands/ that defines it, and its short help as `--help`
lists it (the first sentence of its docstring). Written by `python -m commands.summarise`:
do not edit."""

from ledger.i18n import N_

SUMMARIES: dict[str, tuple[str, str]] = {
'''
SKIP = {"summarise", "summaries"}
WIDTH = 118


def quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a Python literal too, in double quotes


def summaries() -> dict[str, tuple[str, str]]:
    """name -> (module, short help) of every command the modules of commands/ define."""
    found: dict[str, tuple[str, str]] = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name in SKIP:
            continue
        module = importlib.import_module(f"commands.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            found[command.name] = (info.name, command.get_short_help_str(10**6))
    return dict(sorted(found.items()))


def source() -> str:
    lines = []
    for name, (module, short) in summaries().items():
        start = f"    {quoted(name)}: ({quoted(module)}, N_("
        pieces = textwrap.wrap(short, WIDTH - len(start) - 6, drop_whitespace=False) or [""]
        indent = " " * len(start)
        lines.append(start + f"\n{indent}".join(quoted(p) for p in pieces) + ")),")
    return HEAD + "\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    TARGET.write_text(source(), encoding="utf-8")
