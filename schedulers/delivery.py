"""The scheduler's webhook sender: a bounded, long-lived pool of send workers.

The delivery job claims only what the pool has room for and hands it over; it never waits
for a send. Each worker sends one delivery and records its outcome (`record`, its own short
fenced transaction) as soon as that send finishes; when it was delivered, the same
transaction claims that receiver's next due delivery, which the worker sends at once, so a
healthy receiver's backlog streams through its slots without waiting for the job's next run.
A receiver that answers slowly, trickles its body or never answers holds only the workers of
its own sends, and the claims cap those per receiver (`webhooks.Room`), so it can never occupy the whole pool.

The workers are daemon threads: a send stuck on a hostile receiver never keeps the
process from exiting on SIGTERM. Its delivery stays pushed ahead as in flight and is
sent again later (at least once, never lost).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from booking.integrations.webhooks import Outcome, Outgoing

log = logging.getLogger("schedulers")


class Sender:
    def __init__(
        self,
        workers: int,
        send: Callable[[Outgoing], Outcome],
        record: Callable[[Outgoing, Outcome, tuple[Outgoing, ...]], tuple[bool, Outgoing | None]],
        name: str = "webhooks",
    ) -> None:
        """`record(sent, outcome, others in flight)` -> (delivered?, the next delivery to send or None)."""
        self.workers = workers
        self._send, self._record, self._name = send, record, name
        self._queue: queue.SimpleQueue[Outgoing | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[str, tuple[Outgoing, float]] = {}  # delivery id -> (what, since)
        self._changed = threading.Condition()
        self._stopped = False
        self.delivered = 0  # outcomes recorded as delivered, since start

    def free(self) -> int:
        with self._changed:
            return 0 if self._stopped else self.workers - len(self._in_flight)

    def in_flight(self, longer_than: float = 0.0) -> list[Outgoing]:
        """What is being sent now; with `longer_than`, only the sends running for more seconds than that."""
        now = time.monotonic()
        with self._changed:
            return [sent for sent, since in self._in_flight.values() if now - since >= longer_than]

    def submit(self, outgoing: Outgoing) -> None:
        with self._changed:
            if self._stopped:
                return  # its claim runs out and it is sent later
            self._in_flight[outgoing.delivery_id] = (outgoing, time.monotonic())
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._queue.put(outgoing)

    def _work(self) -> None:
        outgoing = self._queue.get()
        while outgoing is not None:
            following = None
            try:
                others = tuple(sent for sent in self.in_flight() if sent.delivery_id != outgoing.delivery_id)
                delivered, following = self._record(outgoing, self._send(outgoing), others)
                if delivered:
                    with self._changed:
                        self.delivered += 1
            except Exception:  # logged; the claim runs out and the delivery is sent again
                log.exception("webhook delivery %s failed", outgoing.delivery_id)
            finally:
                with self._changed:  # the next one takes this one's place: the receiver's count stays
                    self._in_flight.pop(outgoing.delivery_id, None)
                    if following is not None and not self._stopped:
                        self._in_flight[following.delivery_id] = (following, time.monotonic())
                    else:
                        following = None  # claimed but not sent: its claim runs out, it is sent later
                    self._changed.notify_all()
            outgoing = following if following is not None else self._queue.get()

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is in flight (for tests and a graceful stop); False after `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._in_flight, timeout)

    def stop(self, grace: float = 0.0) -> None:
        """No new sends; the idle workers end. Sends in flight get up to `grace` seconds to finish
        and be recorded; the rest are left behind (daemon threads) and sent again later."""
        with self._changed:
            self._stopped = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        if grace:
            self.wait_idle(grace)
