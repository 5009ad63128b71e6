"""SQLite's writers queue on a file beside the store, in the kernel, for their turn to take
SQLite's own write lock (`WriterQueue`)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: appends wait for SQLite's lock as SQLite waits
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = "-lock"  # the file beside the store that its appends queue on


class WriterQueue:
    """Where one thread's appends wait their turn: an exclusive `flock` of a file beside the
    store, on a descriptor of the thread's own. SQLite's wait for its write lock sleeps 1, 2,
    5, 10 ms and more between tries, so a writer that comes while another appends waits many
    times as long as the append takes; the kernel hands a released flock to the next waiter
    at once, first come first served. SQLite's lock still decides who writes: where the file
    cannot be made (a folder we may not write), for a writer that does not queue, or after
    `WAIT` seconds (a writer stopped while it held its turn), an append waits as SQLite makes
    it, and fails as SQLite does."""

    WAIT = 60.0  # seconds, as SQLite's own wait

    def __init__(self, path: str) -> None:
        self.fd: int | None = None
        if fcntl is not None:
            with contextlib.suppress(OSError):  # flock needs no write access to the file
                self.fd = os.open(path + LOCK_SUFFIX, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)

    @classmethod
    def of_thread(cls, local: threading.local, path: str, kept: list[Any]) -> WriterQueue:
        """The calling thread's place (in `local`), made at its first append and kept in
        `kept`, to be closed with the store's connections."""
        queue = getattr(local, "queue", None)
        if queue is None:
            queue = local.queue = cls(path)
            kept.append(queue)
        return queue

    @contextmanager
    def turn(self) -> Iterator[None]:
        """The thread's append, in its turn (or, with no turn to be had, as SQLite makes it)."""
        taken = self.fd is not None and self._taken()
        try:
            yield
        finally:
            if taken:
                fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _taken(self) -> bool:
        """Take the turn; False when `WAIT` ran out first. The wait is a blocking flock in a
        thread of its own (on a copy of the descriptor), so that it can end: a turn that
        comes after it was given up is let go at once."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        got, settled, given_up = threading.Event(), threading.Lock(), threading.Event()
        fd = os.dup(self.fd)

        def wait() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with settled:
                    if given_up.is_set():
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    else:
                        got.set()
            finally:
                os.close(fd)

        threading.Thread(target=wait, name="writer-queue", daemon=True).start()
        try:
            got.wait(self.WAIT)
        except BaseException:  # Ctrl-C: no turn is kept, whenever it comes
            with settled:
                given_up.set()
                if got.is_set():
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
            raise
        with settled:
            if not got.is_set():
                given_up.set()
            return got.is_set()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
