"""Reports travel from a run's worker to the driver in batches.

Every Ray Tune result is a round trip: the training thread waits until the driver has taken
it. A run that reports every step would pay that on every step, so the worker gathers
reports and sends them as one result: at once for the first report and for a report that
carries a checkpoint, else once ``seconds`` have passed since the last send (a timer sends
what waits when the training goes quiet, so a run that then hangs or slows down still shows
its last reports), and at the end of the run.
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
    With ``timer``, a background thread sends what has waited ``seconds``; Ray Tune's request
    to end the run, should it come in that thread, ends the training thread at its next
    report (as Ray Tune does itself, with ``SystemExit``).

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
        self.ended = False  # Ray Tune ended the run during the timer's send
        self._lock = threading.Lock()  # one send at a time, and the batch taken whole
        self._closed = threading.Event()
        if timer:
            threading.Thread(target=self._tick, name="rescue-report-timer", daemon=True).start()

    def add(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None = None) -> None:
        if self.ended:
            raise SystemExit(0)
        with self._lock:
            self.pending.append(dict(metrics))
            due = (
                checkpoint is not None
                or self.last_sent is None
                or len(self.pending) >= self.most
                or time.monotonic() - self.last_sent >= self.seconds
            )
            if due:
                try:
                    self._send(checkpoint)
                except SystemExit:  # Ray Tune ended the run inside its report
                    self.ended = True
                    raise

    def flush(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        """Send what is pending (the checkpoint goes with its last report)."""
        with self._lock:
            self._send(checkpoint)

    def close(self) -> None:
        """Stop the timer and send what is pending (unless Ray Tune ended the run)."""
        self._closed.set()
        if not self.ended:
            self.flush()

    def _send(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        self.count += len(batch)
        result: dict[str, Any] = {**_loggable(batch[-1]), BATCH_KEY: json.dumps(batch)}
        result[COUNT_KEY] = self.count
        self.last_sent = time.monotonic()
        self.send(result, checkpoint)

    def _tick(self) -> None:
        while not self._closed.wait(self.seconds / 2):
            with self._lock:
                if not self.pending or self.last_sent is None:
                    continue
                if time.monotonic() - self.last_sent < self.seconds:
                    continue
                try:
                    self._send()
                except SystemExit:  # Ray Tune ended the run: the training thread follows
                    self.ended = True
                    return
                except Exception:
                    return  # the training thread's next send meets the same error


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
