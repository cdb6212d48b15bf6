"""Reports travel from a run's worker to the driver in batches.

Every Ray Tune result is a round trip: the thread that reports waits until the driver has
taken it, and the driver takes it once it has judged the batch before. A run that reports
every step would pay that on every step, so the worker gathers reports and sends them as one
result: at once for the first report and for a report that carries a checkpoint, else once
``seconds`` have passed since the last send or ``most`` reports wait, and at the end of the
run. In a Ray Tune worker those sends happen in a thread of their own, so the training goes on
while the driver judges (up to ``2 * most`` reports ahead, then it waits); that thread also
sends what waits when the training goes quiet, so a run that then hangs or slows down still
shows its last reports.
The driver unpacks a result into its reports, in order, and the run watch sees every one.

A result carries the batch (``rescue_batch``: the reports as JSON), the number of reports
sent so far (``rescue_reports``, which names the checkpoint's report), and the last report's
metrics at the top level, for Ray Tune's own logs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rescue.worker.reporting import Metrics

BATCH_KEY = "rescue_batch"
COUNT_KEY = "rescue_reports"
SECONDS = 0.25  # the longest a report waits in the worker while reports keep coming
MOST = 1000  # reports per batch at most

Send = Callable[[dict[str, Any], Mapping[str, Any] | None], None]


class Batcher:
    """Gathers one run's reports and hands them to ``send`` (a Ray Tune report) in batches.
    With ``timer``, a background thread sends the batches that are due, and what has waited
    ``seconds``; Ray Tune's request to end the run, or an error, should either come in that
    thread, ends the training thread at its next report (Ray Tune's own way: ``SystemExit``).

    >>> sent = []
    >>> batcher = Batcher(lambda result, checkpoint: sent.append(result), seconds=60)
    >>> for i in range(3):
    ...     batcher.add({"loss": 1.0 / (i + 1)})
    >>> batcher.flush()
    >>> [(r[COUNT_KEY], len(unpack(r))) for r in sent]  # the first at once, then the rest
    [(1, 1), (3, 2)]
    """

    def __init__(
        self, send: Send, seconds: float = SECONDS, most: int = MOST, timer: bool = False
    ) -> None:
        if seconds <= 0 or most < 1:
            raise ValueError(f"expected seconds > 0 and most >= 1, got {seconds}, {most}")
        self.send, self.seconds, self.most = send, seconds, most
        self.pending: list[Metrics] = []
        self.count = 0
        self.last_sent: float | None = None
        self.ended = False  # Ray Tune ended the run during the background thread's send
        self._error: BaseException | None = None  # what that send raised otherwise
        self._state = threading.Lock()  # the pending reports, taken whole
        self._sending = threading.Lock()  # one send at a time, batches in order
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._background = timer
        if timer:
            threading.Thread(target=self._run, name="rescue-report-sender", daemon=True).start()

    def add(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None = None) -> None:
        if self.ended:
            raise SystemExit(0)
        if self._error is not None:
            raise self._error
        if checkpoint is not None or self.last_sent is None:
            # Sent from here, with nothing sent in between: the checkpoint names this report.
            with self._sending:
                with self._state:
                    self.pending.append(dict(metrics))
                self._send_here(checkpoint)
            return
        with self._state:
            self.pending.append(dict(metrics))
            waiting = len(self.pending)
            due = waiting >= self.most or time.monotonic() - self.last_sent >= self.seconds
        if due and self._background and waiting < 2 * self.most:
            self._wake.set()
        elif due:  # no sender thread, or it cannot keep up: the training waits for the send
            with self._sending:
                self._send_here()

    def flush(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        """Send what is pending (the checkpoint goes with its last report)."""
        with self._sending:
            self._send(checkpoint)

    def close(self) -> None:
        """Stop the sender thread and send what is pending (unless Ray Tune ended the run)."""
        self._closed.set()
        self._wake.set()
        if not self.ended:
            self.flush()

    def _send_here(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        try:
            self._send(checkpoint)
        except SystemExit:  # Ray Tune ended the run inside its report
            self.ended = True
            raise

    def _send(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        """Send the pending reports as one result; the caller holds ``_sending``."""
        with self._state:
            if not self.pending:
                return
            batch, self.pending = self.pending, []
            self.count += len(batch)
            count = self.count
            self.last_sent = time.monotonic()
        result: dict[str, Any] = {**_loggable(batch[-1]), BATCH_KEY: json.dumps(batch)}
        result[COUNT_KEY] = count
        self.send(result, checkpoint)

    def _run(self) -> None:
        """The sender thread: a batch when the training says one is due, else what has
        waited ``seconds`` (checked twice as often)."""
        while not self._closed.is_set():
            woken = self._wake.wait(self.seconds / 2)
            self._wake.clear()
            if self._closed.is_set():
                return
            with self._state:
                quiet = self.last_sent is not None and (
                    time.monotonic() - self.last_sent >= self.seconds
                )
                ready = bool(self.pending) and self.last_sent is not None and (woken or quiet)
            if not ready:
                continue
            try:
                with self._sending:
                    self._send()
            except SystemExit:  # Ray Tune ended the run: the training thread follows
                self.ended = True
                return
            except Exception as exc:  # the training thread raises it at its next report
                self._error = exc
                return


def unpack(result: Mapping[str, Any]) -> list[Metrics]:
    """The reports in a result, in order."""
    return [_metrics(m) for m in json.loads(result[BATCH_KEY])]


def report_index(result: Mapping[str, Any]) -> int:
    """The 0-based index of the result's last report in its run."""
    return int(result[COUNT_KEY]) - 1


def _metrics(raw: Mapping[str, Any]) -> Metrics:
    return {k: [float(x) for x in v] if isinstance(v, list) else float(v) for k, v in raw.items()}


def _loggable(metrics: Metrics) -> dict[str, float]:
    """The scalars: what Ray Tune's loggers and progress show."""
    return {k: v for k, v in metrics.items() if isinstance(v, float)}
