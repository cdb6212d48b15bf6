"""Reports travel from a run's worker to the driver in batches.

Every Ray Tune result is a round trip: the thread that reports waits until the driver has
taken it, and the driver takes it once it has recorded the batch before. A run that reports
every step would pay that on every step, so the worker gathers reports and sends them as one
result: at once for the first report, for a report that carries a checkpoint and for one at
which the run's judge found something (:mod:`rescue.worker.judging`), else once ``seconds``
have passed since the last send or ``most`` reports wait, and at the end of the run. In a Ray
Tune worker those other sends happen in a thread of their own, so the training goes on while
the driver records (up to ``2 * most`` reports ahead, then it waits); that thread also sends
what waits when the training goes quiet, so a run that then hangs or slows down still shows
its last reports.
The driver unpacks a result into its reports, in order, and the run's monitor sees every one.

A result carries the batch (``rescue_batch``: the reports as JSON), the number of reports
sent so far (``rescue_reports``, which names the checkpoint's report), what the judge said
(``rescue_judged``), and the last report's metrics at the top level, for Ray Tune's own
logs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rescue.worker.judging import JUDGED_KEY, BatchJudge
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
        self,
        send: Send,
        seconds: float = SECONDS,
        most: int = MOST,
        timer: bool = False,
        judge: BatchJudge | None = None,
    ) -> None:
        """``judge``: the run's judge (:mod:`rescue.worker.judging`), which judges each
        report as it is added; its verdict, or the run's declared length, ends the run."""
        if seconds <= 0 or most < 1:
            raise ValueError(f"expected seconds > 0 and most >= 1, got {seconds}, {most}")
        self.send, self.seconds, self.most = send, seconds, most
        self.judge = judge
        self.pending: list[Metrics] = []
        self.said: dict[int, dict[str, Any]] = {}  # the judge's word on pending reports
        self.count = 0
        self.last_sent: float | None = None
        self.ended = False  # Ray Tune ended the run during the background thread's send
        self.stopped = False  # the judge ended the run: a verdict, or its declared length
        self._error: BaseException | None = None  # what that send raised otherwise
        self._state = threading.Lock()  # the pending reports, taken whole
        self._sending = threading.Lock()  # one send at a time, batches in order
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._background = timer
        if timer:
            threading.Thread(target=self._run, name="rescue-report-sender", daemon=True).start()

    def add(self, metrics: Metrics, checkpoint: Mapping[str, Any] | None = None) -> None:
        if self.ended or self.stopped:
            raise SystemExit(0)  # how Ray Tune ends a trial's training thread, too
        if self._error is not None:
            raise self._error
        said = self.judge.judge_report(metrics) if self.judge is not None else None
        over = self.judge is not None and self.judge.over
        if checkpoint is not None or self.last_sent is None or over or said and "findings" in said:
            # Sent from here, with nothing sent in between: the checkpoint names this report,
            # and a finding reaches the driver at once.
            with self._sending:
                with self._state:
                    self._append(metrics, said)
                self._send_here(checkpoint)
            self.stopped = over  # the training ends at its next report
            return
        with self._state:
            self._append(metrics, said)
            waiting = len(self.pending)
            due = waiting >= self.most or time.monotonic() - self.last_sent >= self.seconds
        if due and self._background and waiting < 2 * self.most:
            self._wake.set()
        elif due:  # no sender thread, or it cannot keep up: the training waits for the send
            with self._sending:
                self._send_here()

    def _append(self, metrics: Metrics, said: dict[str, Any] | None) -> None:
        if said is not None:
            self.said[len(self.pending)] = said
        self.pending.append(dict(metrics))

    def flush(self, checkpoint: Mapping[str, Any] | None = None, finished: bool = False) -> None:
        """Send what is pending (the checkpoint goes with its last report); ``finished``: the
        run ended by itself, and the judge's end-of-run checks go too."""
        with self._sending:
            self._send(checkpoint, finished)

    def close(self, finished: bool = False) -> None:
        """Stop the sender thread and send what is pending, unless Ray Tune or the judge
        ended the run (what it made since is not part of it); ``finished``: as for
        :meth:`flush`."""
        self._closed.set()
        self._wake.set()
        if not self.ended and not self.stopped:
            self.flush(finished=finished)

    def _send_here(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        try:
            self._send(checkpoint)
        except SystemExit:  # Ray Tune ended the run inside its report
            self.ended = True
            raise

    def _send(self, checkpoint: Mapping[str, Any] | None = None, finished: bool = False) -> None:
        """Send the pending reports as one result; the caller holds ``_sending``. A run that
        finished with nothing pending still sends its end-of-run checks."""
        with self._state:
            if not (self.pending or finished and self.judge is not None):
                return
            batch, self.pending = self.pending, []
            said, self.said = self.said, {}
            self.count += len(batch)
            count = self.count
            self.last_sent = time.monotonic()
        result: dict[str, Any] = {
            **_loggable(batch[-1] if batch else {}),
            BATCH_KEY: json.dumps(batch),
        }
        result[COUNT_KEY] = count
        if self.judge is not None:
            result[JUDGED_KEY] = self.judge.annotate(said, finished)
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
