"""The `leadledger` command's entry point.

The click group and its commands are in commands/ (root.py). A plain `verify-receipt`, the
auditor's check that needs no store, runs without click (commands/offline.py) so that it
answers in little more than the interpreter's start.
"""

from __future__ import annotations

import sys

from commands import offline, plain
from ledger import i18n
from ledger.errors import InvalidInput
from ledger.i18n import _


def main(argv: list[str] | None = None) -> None:
    """Run one command. Every failure ends with a status from 0 to 6 (130 for Ctrl-C). A
    closed stdout (`| head`, `>&-`) ends it quietly with the status of what it did: its reader
    going away is no failure of the command's."""
    argv = sys.argv[1:] if argv is None else argv
    plain.closed_streams()
    i18n.activate(i18n.from_argv(argv))  # before click parses: its errors follow --lang too
    request = offline.parse(argv)
    code = 0
    try:
        try:
            bad = plain.undecodable(argv)
            if bad is not None:
                plain.report(InvalidInput(_("{argument} is not UTF-8 text", argument=bad)), plain.wants_json(argv))
            if request is not None:
                offline.run(request)
            else:
                from commands.root import invoke  # noqa: PLC0415 - click, for every other command line

                invoke(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
    except BrokenPipeError:
        plain.stdout_gone()
    sys.exit(code)


if __name__ == "__main__":
    main()
