"""Pages written by a second process: a backfill's SQLite work off this process's GIL.

A cold sync is CPU work in two halves of about the same size: reading pages (HTTP, JSON, the
adapter's mapping, rows) and writing them (SQLite). In one process the two take turns under
one GIL, and a sync ran at half the speed of a loader that only stores raw JSON
(docs/performance.md). So a poll with many pages to write starts a :class:`PageWriter`: a
child process with its own connection to the same ledger file, which writes each page (its
rows and its cursor in one transaction, :meth:`OrderStore.write_rows`, the very code that
writes in process) while this process reads and maps the next one.

What stays as it was:

- **Order.** The writer takes pages in the order sent, at most :data:`DEPTH` at a time (one
  written, the next waiting in the pipe, so that the writer never waits for it). Once a page
  fails (a value SQLite refuses, an SQLite error), the writer applies none of the pages after
  it (``Skipped``) until its parent says :meth:`PageWriter.resume`: the parent writes the
  failed page and those after it itself, in order, or stops.
- **Nothing lost or doubled.** A page whose answer does not come back (the writer died) is
  written again in process: rewriting a committed page writes nothing, as its orders' digests
  are stored. A page the writer cannot store comes back ``Unstorable``, rolled back, for the
  order-by-order path in process.
- **No orphan.** The writer asks the kernel to kill it when its parent dies (Linux), ends when
  its input closes, and ignores SIGINT and SIGTERM: its parent decides when it ends.
- **Errors.** An SQLite error comes back as the same ``sqlite3`` exception (its name and code),
  so callers tell the operator what they would in process; anything else is a bug.

The protocol on the child's stdin and stdout: frames of an 8-byte length and a pickle (both
ends are this module, the same installation).
"""

from __future__ import annotations

import fcntl
import io
import os
import pickle
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from .orders import UNSTORABLE
from .records import PageResult
from .sqlite import Ledger

HEADER = struct.Struct(">Q")
DEPTH = 2
"""Pages the writer may have at once: the one it writes and the next."""
PIPE_BYTES = 1 << 20
"""The pipe to the writer, enlarged so that a page (~640 KB for 250 Fotoware orders) fits:
sending the next page does not wait for the writer to finish the one before."""
CLOSE_TIMEOUT_S = 5.0
"""How long :meth:`PageWriter.close` waits for the writer to finish before killing it."""
PR_SET_PDEATHSIG = 1


class Unstorable(ValueError):
    """The writer could not store a value of the page (it rolled the page back)."""


class Skipped(Exception):
    """The writer did not apply the page: one before it failed (see :meth:`PageWriter.resume`)."""


class WriterGone(Exception):
    """The writer process ended or broke the protocol; the page may not be written."""


def payload(instance: str, adapter: str, stream: str, rows: list, cursor: dict | None,
            now: float, source: str, read_at: float | None) -> bytes:
    """One page for the writer (:meth:`OrderStore.write_rows`'s arguments), pickled.

    In the pickler's fast mode, which keeps no memo of the objects it has written: half the
    CPU. An object held twice is written twice; one that holds itself would fail, and rows
    made of JSON values never do.
    """
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump((instance, adapter, stream, rows, cursor, now, source, read_at))
    return out.getvalue()


class PageWriter:
    """The parent's end: start the writer, send it a page, read what the page did, end it.

    Blocking and not thread-safe: the ledger's thread uses it (pages.PageSink), sending a page
    right after staging it, with at most :data:`DEPTH` pages unanswered. Blocking reads and
    writes free the GIL while a page crosses, whatever the event loop is doing.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self._proc = proc
        self._ready = False
        if proc.stdin is not None:
            try:
                fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except (OSError, AttributeError):
                pass        # a smaller pipe (not Linux, a lower pipe-max-size): only slower

    @classmethod
    def start(cls, path: Path) -> PageWriter:
        """Start a writer for the ledger at ``path``; it is :attr:`ready` once it has opened it
        (meanwhile, and if it never is, pages are written in process).

        Call it on the thread that lives as long as the process (the event loop's): Linux
        signals the writer when the thread that started it ends.
        """
        if not sys.executable:              # an embedded interpreter: no Python to start
            raise OSError("no Python interpreter to start the page writer with")
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH"))
                                            if p)
        return cls(subprocess.Popen(
            [sys.executable, "-c", "from ordersync.ledger.pagewriter import main; main()",
             str(path), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        ))

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def ready(self) -> bool:
        """Whether the writer has opened the ledger and takes pages (never waits)."""
        if not self._ready and self._proc.returncode is None:
            stdout = self._proc.stdout
            assert stdout is not None
            if select.select([stdout], [], [], 0)[0]:
                try:
                    self._ready = self._answer() == ("ready",)
                except WriterGone:
                    pass
                if not self._ready:
                    self._proc.kill()       # it could not open the ledger: in process then
        return self._ready

    def send(self, page: bytes) -> None:
        """Send one page (:func:`payload`); :meth:`receive` reads what it did. The caller
        keeps at most :data:`DEPTH` pages unanswered."""
        assert self._ready
        self._frame(page)

    def resume(self) -> None:
        """After a page failed: the writer applies the pages sent from now on again."""
        self._frame(b"")

    def _frame(self, data: bytes) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(HEADER.pack(len(data)))
            stdin.write(data)
            stdin.flush()
        except OSError as exc:
            self._ready = False
            raise WriterGone(f"the page writer ended ({type(exc).__name__})") from None

    def receive(self) -> PageResult:
        """What the oldest page unanswered did; raises :class:`Unstorable`, :class:`Skipped`,
        the page's ``sqlite3.Error``, or :class:`WriterGone` if the writer could not answer."""
        answer = self._answer()
        kind = answer[0]
        if kind == "ok":
            return answer[1]
        if kind == "skipped":
            raise Skipped()
        if kind == "unstorable":
            raise Unstorable(answer[1])
        if kind == "sqlite":
            raise _sqlite_error(*answer[1:])
        raise RuntimeError(f"page writer: {answer[1]}")     # a bug: its traceback

    def _answer(self) -> Any:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            header = stdout.read(HEADER.size)
            if len(header) == HEADER.size:
                size = HEADER.unpack(header)[0]
                body = stdout.read(size)
                if len(body) == size:
                    return pickle.loads(body)
        except (OSError, pickle.UnpicklingError, EOFError):
            pass
        self._ready = False
        raise WriterGone("the page writer ended")

    def close(self) -> None:
        """End the writer: its input closes, it finishes and exits (killed if it takes more
        than :data:`CLOSE_TIMEOUT_S`)."""
        proc = self._proc
        self._ready = False
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(CLOSE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def _sqlite_error(name: str, errorname: str | None, errorcode: int | None,
                  message: str) -> sqlite3.Error:
    cls = getattr(sqlite3, name, None)
    if not (isinstance(cls, type) and issubclass(cls, sqlite3.Error)):
        cls = sqlite3.Error
    exc = cls(message)
    exc.sqlite_errorname = errorname     # type: ignore[assignment]
    exc.sqlite_errorcode = errorcode     # type: ignore[assignment]
    return exc


# --------------------------------------------------------------------------- the child


def main() -> None:
    """The writer process: ``<ledger path> <parent pid>``; pages on stdin, answers on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(int(sys.argv[2]))
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    try:
        ledger = Ledger(Path(sys.argv[1]), prepared=True)
    except Exception as exc:
        _send(sink, _failure(exc))
        return
    _send(sink, ("ready",))
    failed = False          # a page failed: apply none until the parent resumes us
    try:
        while True:
            header = source.read(HEADER.size)
            if len(header) < HEADER.size:
                return                                  # the parent closed our input
            size = HEADER.unpack(header)[0]
            if size == 0:
                failed = False                          # resume
                continue
            page = source.read(size)
            if failed:
                _send(sink, ("skipped",))
                continue
            try:
                answer: tuple = ("ok", ledger.write_rows(*pickle.loads(page)))
            except UNSTORABLE as exc:
                answer = ("unstorable", str(exc))
            except Exception as exc:
                answer = _failure(exc)
            failed = answer[0] != "ok"
            _send(sink, answer)
    finally:
        ledger.close()


def _failure(exc: Exception) -> tuple:
    if isinstance(exc, sqlite3.Error):
        return ("sqlite", type(exc).__name__, getattr(exc, "sqlite_errorname", None),
                getattr(exc, "sqlite_errorcode", None), str(exc))
    return ("bug", "".join(traceback.format_exception(exc)).strip())


def _send(sink, answer: tuple) -> None:
    data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    sink.write(HEADER.pack(len(data)) + data)
    sink.flush()


def _die_with_parent(parent: int) -> None:
    """Ask Linux for SIGKILL when the parent dies (elsewhere, the closed input ends us)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:      # it died before we asked
        os._exit(0)
