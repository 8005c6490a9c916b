"""A page of vendor orders into the ledger: staged, then written here or by the page writer.

:func:`stage` maps a page with the adapter's pure mapping and builds its rows on the ledger's
thread; :func:`write_staged` writes it with its cursor in one transaction; a big poll's
:class:`PageSink` hands its pages to a page writer process instead (ledger/pagewriter.py),
so that SQLite runs beside the mapping of the next page rather than after it. An order that
cannot be read is stored flagged (intake.py), never a reason to lose the page.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, replace
from functools import partial

import structlog

from .contract import AdapterSpec, Page
from .intake import Limits, admit, admit_row, flagged, sound_text
from .ledger import AsyncLedger, LedgerAPI, PageResult, digest, pagewriter
from .ledger.orders import UNSTORABLE, PageRows, page_rows

DEFAULT_LIMITS = Limits()  # one shared default, as the default argument was

log = structlog.get_logger("ordersync.sync")


@dataclass
class Staged:
    """A page mapped and turned into rows (:func:`stage`), ready to be written: here
    (:func:`write_staged`) or, pickled, by the page writer process (pagewriter.py)."""

    raw_orders: list
    """The page's orders but those the ledger holds byte for byte."""
    same: int
    """How many those were (unchanged: nothing to write)."""
    rows: PageRows | None
    """None if they could not be built (custom data orjson cannot serialise)."""
    cursor: dict | None
    payload: bytes | None = None
    """The rows and cursor pickled for the page writer, when it was asked for."""

    @property
    def empty(self) -> bool:
        """Nothing to write: no order that changed, no cursor (no transaction either)."""
        return not self.raw_orders and self.cursor is None


def stage(
    ledger: LedgerAPI, spec: AdapterSpec, instance: str, stream: str, raw_orders: list[dict],
    cursor: dict | None, now: float, source: str = "poll", read_at: float | None = None,
    limits: Limits = DEFAULT_LIMITS, pickled: bool = False, backfill: bool = False,
) -> Staged:
    """Map a page with the adapter's pure mapping and build its rows (the ledger's thread).

    An order the mapping cannot read, or over a limit, is flagged (intake.py). An order whose
    JSON is the very copy the ledger holds unflagged is not mapped at all: the mapping is
    pure, so it would give what is stored. In a ``backfill`` (into a ledger that held no order
    when the poll began) that comparison is left out: it would find next to nothing, and
    whatever it would have skipped is written as unchanged all the same. ``pickled`` also
    packs the page for the page writer.
    """
    map_row, identify = spec.map_row, spec.identify
    same = 0
    if not backfill:
        raw_orders, same = _without_stored_copies(ledger, instance, identify, raw_orders, limits)
    rows: PageRows | None
    if map_row is not None:
        rows = [admit_row(raw, map_row, identify, limits) for raw in raw_orders]
    else:
        try:
            rows = page_rows([admit(raw, spec.map_order, identify, limits)
                              for raw in raw_orders])
        except UNSTORABLE:
            rows = None
    staged = Staged(raw_orders, same, rows, cursor)
    if pickled and rows is not None and not staged.empty:
        staged.payload = pagewriter.payload(instance, spec.name, stream, rows, cursor, now,
                                            source, read_at)
    return staged


def write_staged(
    ledger: LedgerAPI, spec: AdapterSpec, instance: str, stream: str, staged: Staged,
    now: float, source: str = "poll", read_at: float | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> PageResult:
    """Write a staged page with its cursor, in one transaction, in this process.

    A page holding a value the ledger cannot store is written order by order instead, each
    such order flagged (see :func:`_one_by_one`).
    """
    if staged.empty:
        return PageResult(unchanged=staged.same)
    if staged.rows is not None:
        try:
            result = ledger.write_rows(instance, spec.name, stream, staged.rows, staged.cursor,
                                       now, source, read_at)
        except UNSTORABLE:
            pass
        else:
            return counted(instance, result, staged.same)
    write = partial(ledger.apply_page, instance, spec.name, stream, now=now, source=source,
                    read_at=read_at)
    return counted(instance, _one_by_one(ledger, write, spec, staged, limits), staged.same)


def map_and_apply(
    ledger: LedgerAPI, spec: AdapterSpec, instance: str, stream: str, raw_orders: list[dict],
    cursor: dict | None, now: float, source: str = "poll", read_at: float | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> PageResult:
    """:func:`stage` and :func:`write_staged` a page in one go (the ledger's thread)."""
    staged = stage(ledger, spec, instance, stream, raw_orders, cursor, now, source, read_at,
                   limits)
    return write_staged(ledger, spec, instance, stream, staged, now, source, read_at, limits)


def counted(instance: str, result: PageResult, same: int) -> PageResult:
    """A written page's result, with the orders it skipped; each order whose flag came or
    went on it logged (transitions, not every poll)."""
    for vendor_id, problem in result.flips:
        if problem is None:
            log.info("order_cleared", vendor=instance, order=vendor_id)
        else:
            log.warning("order_flagged", vendor=instance, order=vendor_id, problem=problem)
    return replace(result, unchanged=result.unchanged + same) if same else result


def _one_by_one(ledger: LedgerAPI, write, spec: AdapterSpec, staged: Staged, limits: Limits
                ) -> PageResult:
    """The page held a value the ledger cannot store: write it order by order (each in its
    own savepoint of one transaction), keeping any such order flagged, then the cursor."""
    total: Counter = Counter()
    flips: list = []
    identify = spec.identify
    with ledger.write():
        for raw in staged.raw_orders:
            order = admit(raw, spec.map_order, identify, limits)
            try:
                part = write([order], None)
            except UNSTORABLE as exc:
                problem = f"not storable: {exc}"[:500]
                try:
                    part = write([flagged(raw, problem, identify, limits)], None)
                except UNSTORABLE:      # the vendor id itself cannot be stored
                    part = write([flagged(raw, problem, None, limits)], None)
            flips += part.flips
            total.update(new=part.new, changed=part.changed, unchanged=part.unchanged,
                         flagged=part.flagged)
        write([], staged.cursor)
    return PageResult(**total, flips=tuple(flips))


def _without_stored_copies(ledger: LedgerAPI, instance: str, identify, raw_orders: list,
                           limits: Limits) -> tuple[list, int]:
    """The orders of a page but those whose JSON the ledger holds, unflagged, byte for byte
    (an idle poll maps nothing and builds no row), and how many those were.

    An order the ledger has none of (a cold sync) costs its ``identify`` and a share of one
    query; the comparison is of ``digest(orjson.dumps(raw))``, what every adapter keeps.
    """
    if identify is None:
        return raw_orders, 0
    ids = [_identity(identify, raw) for raw in raw_orders]
    stored = ledger.sound_digests(instance, [i for i in ids if i is not None])
    if not stored:
        return raw_orders, 0
    kept = []
    for raw, vendor_id in zip(raw_orders, ids, strict=True):
        before = stored.get(vendor_id) if vendor_id is not None else None
        if before is not None:
            text = sound_text(raw, limits)
            if text is not None and digest(text) == before:
                continue
        kept.append(raw)
    return kept, len(raw_orders) - len(kept)


def _identity(identify, raw) -> str | None:
    try:
        found = identify(raw) if isinstance(raw, dict) else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return found[0] if found else None


class PageSink:
    """Where a poll's pages go, one at a time and in order, each with its cursor.

    Each page is staged (mapped, rows built) on the ledger's thread and written there, or,
    once the poll has handed on ``page_writer_after_orders`` orders (config), sent to a page writer
    process (pagewriter.py) that writes it while the ledger's thread stages the next one and
    the event loop fetches the one after. All talk with the writer is on the ledger's thread:
    a page is sent right after it is staged, once the writer holds fewer than
    ``pagewriter.DEPTH`` pages.
    """

    def __init__(self, ledger: AsyncLedger, spec: AdapterSpec, instance: str, stream: str,
                 limits: Limits, writer_after_orders: int, backfill: bool = False) -> None:
        self.ledger, self.spec, self.instance, self.stream = ledger, spec, instance, stream
        self.limits = limits
        self.writer_after_orders = writer_after_orders
        self.backfill = backfill
        self.writer: pagewriter.PageWriter | None = None
        self.handed = 0
        self.pages_written = 0
        """Pages the page writer wrote."""
        self._started = False
        self._job: asyncio.Future[list[PageResult]] | None = None
        self._done: list[PageResult] = []
        self._sent: deque[tuple[Staged, float, float]] = deque()
        """The pages the writer has, oldest first (the ledger's thread alone touches these)."""
        self._resume = False
        """A page the writer had failed: it applies no more until resumed."""

    async def put(self, page: Page, now: float, read_at: float) -> list[PageResult]:
        """Hand a page on; returns what the pages written since the last call did."""
        done = await self._taken()
        if not self._started and self.handed >= self.writer_after_orders:
            self._start_writer()
        self._job = self.ledger.submit(self._step, page.orders, page.cursor, now, read_at)
        self.handed += len(page.orders)
        return done

    async def finish(self) -> list[PageResult]:
        """Until every page handed on is written; what those did."""
        await self.settled()
        return await self._taken()

    async def settled(self) -> None:
        """Until every page handed on is written: a read after this sees them all."""
        job, self._job = self._job, None
        if job is not None:
            self._done += await asyncio.shield(job)
        if self._sent:
            self._done += await asyncio.shield(self.ledger.call(self._receive))

    async def close(self) -> None:
        """Let the pages handed on finish, then end the page writer if there is one."""
        try:
            await self.settled()
        finally:
            writer, self.writer = self.writer, None
            if writer is not None:
                await asyncio.shield(self.ledger.call(lambda _: writer.close()))
                log.info("page_writer_ended", vendor=self.instance, pid=writer.pid,
                         pages=self.pages_written)

    async def _taken(self) -> list[PageResult]:
        job, self._job = self._job, None
        done, self._done = self._done, []
        if job is not None:
            done += await asyncio.shield(job)
        return done

    def _start_writer(self) -> None:
        self._started = True            # once per poll
        path = self.ledger.ledger.path
        if path is None:
            return                      # an in-memory ledger: no other process can open it
        try:
            self.writer = pagewriter.PageWriter.start(path)
        except OSError as exc:
            log.warning("page_writer_not_started", vendor=self.instance, error=str(exc))
        else:
            log.info("page_writer_started", vendor=self.instance, pid=self.writer.pid)

    # -- on the ledger's thread ------------------------------------------------------------

    def _step(self, ledger: LedgerAPI, raw_orders: list[dict], cursor: dict | None,
              now: float, read_at: float) -> list[PageResult]:
        """Stage a page, then send it to the writer (once it has room: what its oldest page
        did is read first) or write it here, after every page before it."""
        writer = self.writer if self.writer is not None and self.writer.ready else None
        staged = stage(ledger, self.spec, self.instance, self.stream, raw_orders, cursor, now,
                       "poll", read_at, self.limits, writer is not None, self.backfill)
        done = self._receive(ledger, keep=pagewriter.DEPTH - 1)
        if self._resume:
            done += self._receive(ledger)       # the writer resumes once it holds nothing
        if staged.payload is not None and writer is not None and self.writer is writer:
            try:
                writer.send(staged.payload)
            except pagewriter.WriterGone as exc:
                self._writer_gone(exc)
            else:
                self._sent.append((staged, now, read_at))
                return done
        done += self._receive(ledger)           # a writer gone: its pages here, in order
        done.append(self._write_here(ledger, staged, now, read_at))
        return done

    def _receive(self, ledger: LedgerAPI, keep: int = 0) -> list[PageResult]:
        """What the pages with the writer did, oldest first, until ``keep`` are left. A page
        the writer did not write (it could not store it, skipped it after one that failed, or
        ended) is written here in its turn; rewriting one it did commit writes nothing."""
        done: list[PageResult] = []
        while len(self._sent) > keep:
            staged, now, read_at = self._sent.popleft()
            if self.writer is not None:
                try:
                    done.append(counted(self.instance, self.writer.receive(), staged.same))
                    self.pages_written += 1
                    continue
                except pagewriter.Unstorable:
                    staged.rows = None      # here too: straight to the order-by-order path
                    self._resume = True
                except pagewriter.Skipped:
                    self._resume = True
                except pagewriter.WriterGone as exc:
                    self._writer_gone(exc)
                except BaseException:
                    # An SQLite error: the poll stops at this page, and the writer skipped
                    # the ones after it, which are not written either.
                    self._sent.clear()
                    raise
            done.append(self._write_here(ledger, staged, now, read_at))
        if self._resume and not self._sent and self.writer is not None:
            self._resume = False
            try:
                self.writer.resume()
            except pagewriter.WriterGone as exc:
                self._writer_gone(exc)
        return done

    def _write_here(self, ledger: LedgerAPI, staged: Staged, now: float, read_at: float
                    ) -> PageResult:
        return write_staged(ledger, self.spec, self.instance, self.stream, staged, now, "poll",
                            read_at, self.limits)

    def _writer_gone(self, exc: Exception) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
            log.warning("page_writer_gone", vendor=self.instance, pid=writer.pid, error=str(exc),
                        pages=self.pages_written)
