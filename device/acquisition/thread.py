"""The sampler on a background thread, handing blocks over through a bounded queue.

Acquisition must never wait for a slow consumer (the chips' FIFOs would overflow), and the queue
must not grow without bound on a Pi. So when the queue is full the block is not queued: its
samples become a ``stall`` gap that travels with the next block of the same stream that fits.
Nothing is lost silently: the accounting still closes.

The blocks the sampler yields between two of its waits (those of one 20 ms pacing step) are
queued without waking the consumer and released together when the sampler is about to wait
(:attr:`Sampler.before_wait`): one wake-up of the consumer per step instead of one per block,
and the consumer does not compete with the sampler for the interpreter while the sampler is
still handing over. The sampler waits right after its last block of a step, so no block is
held back longer than the few µs that takes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import replace

from spinecoach.acquisition.sampler import Sampler, empty_block
from spinecoach.drivers.blocks import Block, Gap, StreamInfo


class _HeldQueue(queue.Queue[object]):
    """A queue whose items can be put without waking the consumer until :meth:`release`."""

    _held = False

    def put_held(self, item: object) -> None:
        """Put ``item`` without notifying a waiting consumer; raises ``queue.Full`` at once
        when the queue is full."""
        with self.not_full:
            if 0 < self.maxsize <= self._qsize():
                raise queue.Full
            self._put(item)
            self.unfinished_tasks += 1
            self._held = True

    def get_batch(self, timeout_s: float, limit: int) -> list[object]:
        """Every item waiting, at most ``limit``, in order: one lock round for a batch instead
        of one per item (and no ``queue.Empty`` raised to end it); waits up to ``timeout_s``
        for the first; [] when none came."""
        with self.not_empty:
            if not self._qsize():
                self.not_empty.wait(timeout_s)
            items = [self._get() for _ in range(min(limit, self._qsize()))]
            if items:
                self.not_full.notify(len(items))
            return items

    def release(self) -> None:
        """Wake the consumer for the items put with :meth:`put_held` since the last release."""
        if not self._held:  # set and cleared on the sampler's thread only
            return
        with self.mutex:
            if self._held:
                self._held = False
                self.not_empty.notify()


class SamplerThread:
    """Runs ``sampler.blocks(duration_s)`` on a daemon thread; iterate to receive blocks.

    ``maxsize`` bounds the queue (blocks; 50 blocks of 20 ms is one second of slack).
    ``backpressure=True`` makes the sampler wait for the consumer instead of turning a full
    queue into a stall gap: right for a source on a virtual clock (a simulated rig run as fast
    as possible), where no chip FIFO fills while it waits. :meth:`stop` ends the run (the sampler finishes cleanly: a final drain and trailing gaps).
    An exception on the thread is re-raised in the consumer.
    ``pacing`` is the :class:`Sampler` whose waits end a batch of blocks (see the module
    docstring; default: ``sampler`` itself when it is one, else every block wakes the consumer).
    """

    _END = object()

    def __init__(
        self,
        sampler: Sampler,
        duration_s: float | None = None,
        maxsize: int = 50,
        backpressure: bool = False,
        pacing: Sampler | None = None,
    ):
        self.sampler = sampler
        self._backpressure = backpressure
        self._duration_s = duration_s
        self._queue = _HeldQueue(maxsize=maxsize)
        if pacing is None and isinstance(sampler, Sampler):
            pacing = sampler
        # With backpressure the sampler waits for room in the queue, so every put must wake
        # the consumer at once.
        self._batched = pacing is not None and not backpressure
        if self._batched:
            assert pacing is not None
            pacing.before_wait = self._queue.release
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._spilled: dict[str, tuple[StreamInfo, list[Gap]]] = {}
        self.dropped_blocks = 0
        self._thread = threading.Thread(target=self._run, name="spinecoach-sampler", daemon=True)

    def start(self) -> SamplerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to finish; returns at once (keep iterating to get the last blocks)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            iterator = self.sampler.blocks(self._duration_s)
            for block in iterator:
                self._offer(block)
                if self._stop.is_set():
                    iterator.close()
                    for tail in self.sampler.finish():
                        self._offer(tail, wait=True)
                    break
            leftovers = list(self._spilled.values())
            self._spilled.clear()
            for info, gaps in leftovers:
                self._offer(empty_block(info, tuple(gaps)), wait=True)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consuming thread
            self._error = error
        finally:
            self._put_end()

    def _offer(self, block: Block, wait: bool = False) -> None:
        if self._spilled:
            _, spilled = self._spilled.pop(block.info.name, (block.info, []))
            if spilled:
                block = replace(block, gaps=(*spilled, *block.gaps))
        try:
            if self._backpressure:
                self._queue.put(block)
                return
            if self._batched and not wait:
                self._queue.put_held(block)
                return
            self._queue.put(block, block=wait, timeout=1.0 if wait else None)
        except queue.Full:
            self.dropped_blocks += 1
            lost = list(block.gaps)
            if len(block):
                lost.append(Gap(block.info.name, int(block.index[0]), len(block), "stall"))
            self._spilled[block.info.name] = (block.info, lost)

    def _put_end(self) -> None:
        while True:
            try:
                self._queue.put(self._END, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():  # pragma: no cover - consumer gone
                    return

    def __iter__(self) -> Iterator[Block]:
        while True:
            item = self._queue.get()
            if item is self._END:
                if self._error is not None:
                    raise self._error
                return
            yield item  # type: ignore[misc]

    #: True once :meth:`poll` has taken the end of the run.
    ended = False

    def poll_batch(self, timeout_s: float, limit: int) -> list[Block]:
        """The blocks waiting (at most ``limit``, waiting up to ``timeout_s`` for the first),
        [] when none came or the run has ended (:attr:`ended`); an exception on the thread is
        re-raised once the blocks before it have been taken."""
        if self.ended:
            return []
        items = self._queue.get_batch(timeout_s, limit)
        if items and items[-1] is self._END:
            blocks = items[:-1]
            if blocks:  # the end marker goes back: it is taken with the next batch
                with self._queue.mutex:
                    self._queue.queue.appendleft(self._END)
                return blocks  # type: ignore[return-value]
            self.ended = True
            if self._error is not None:
                raise self._error
            return []
        return items  # type: ignore[return-value]

    def poll(self, timeout_s: float) -> Block | None:
        """The next block, or None when none came within ``timeout_s`` or the run has ended
        (:attr:`ended`), for a consumer that must also do other things (the daemon's engine
        loop); an exception on the thread is re-raised here."""
        if self.ended:
            return None
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if item is self._END:
            self.ended = True
            if self._error is not None:
                raise self._error
            return None
        return item  # type: ignore[return-value]
