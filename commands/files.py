"""The files commands write of their own (receipts, exports, pages, keys): whole or not at all."""

from __future__ import annotations

import os
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

from ledger.errors import InvalidInput
from ledger.i18n import _

T = TypeVar("T")
STREAMS = ("/dev/", "/proc/")  # paths of streams and devices, never replaced by a rename


def write_file(path: str, write: Callable[[str], T], *, new: bool = False) -> T:
    """`write(name)` writes the file at `name`, which becomes `path` once complete (see
    `replacing`). A failure on the way is bad input that names `path`."""
    try:
        with replacing(path, new=new) as temp:
            return write(temp)
    except FileExistsError:
        raise
    except OSError as e:
        raise InvalidInput(_("cannot write {file}: {reason}", file=path, reason=e.strerror or e), file=path) from None


@contextmanager
def replacing(path: str, *, new: bool = False) -> Iterator[str]:
    """A name to write `path` under, in a private folder beside it, moved over `path` only once
    the file is complete and on disk: a failed write (a full disk, a size limit, Ctrl-C) leaves
    `path` as it was and nothing half-written. With `new`, a `path` that exists (a symlink too)
    is never replaced: FileExistsError. A symlink's file is replaced, as open() would write it;
    a device or a pipe (/dev/stdout) is written as it is (`in_place`), since renaming over it
    would remove it, or replace the file the shell redirected it to."""
    if not new and in_place(path):
        yield path
        return
    target = os.path.abspath(path) if new else os.path.realpath(path)
    folder = _private_folder(os.path.dirname(target))
    temp = os.path.join(folder, os.path.basename(target))  # its name, for writers that go by it
    try:
        with _terminable():
            yield temp
            _settle(temp, target, new)
    finally:
        with suppress(OSError):
            os.unlink(temp)
        with suppress(OSError):
            os.rmdir(folder)


def in_place(path: str) -> bool:
    """Whether `path` is written as it is, not replaced: a stream the shell opened (/dev/stdout,
    /dev/fd/N, which resolve to a pipe or to whatever file was redirected), or an existing file
    that is no regular one (a FIFO, a device)."""
    if os.path.abspath(path).startswith(STREAMS):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:  # not there yet, or a link to nothing: a new file
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode)


@contextmanager
def _terminable() -> Iterator[None]:
    """SIGTERM (a `timeout`, a service stopping) as Ctrl-C while a file is written, so the
    temporary copy, which may hold personal data, is removed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _private_folder(parent: str) -> str:
    """A new folder (mode 0700) beside the target: on its file system, so the move is one rename,
    and only this process writes in it. Its name says what it is, should a crash leave it."""
    while True:
        folder = os.path.join(parent, f".leadledger-{os.urandom(6).hex()}.part")
        try:
            os.mkdir(folder, 0o700)
            return folder
        except FileExistsError:
            continue


def _settle(temp: str, target: str, new: bool) -> None:
    """Move the written file to its name: its bytes on disk first, so that a crash just after
    cannot leave the name on an empty file."""
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        _link_new(temp, target)
        return
    if os.path.isfile(target):  # the file keeps its permissions, as an overwrite in place would
        os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
    os.replace(temp, target)


def _link_new(temp: str, target: str) -> None:
    """Give the file its name only if nothing has it: a hard link never replaces. Where the file
    system has none (FAT, some shares), the name is taken first, then replaced."""
    try:
        os.link(temp, target)
        return
    except FileExistsError:
        raise
    except OSError:
        pass
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        os.replace(temp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(target)
        raise
