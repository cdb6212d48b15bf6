"""Drawing the page while the supervisor does something else that waits."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rescue.detectors.findings import Finding
    from rescue.engine.record import RescueReport, RunRecord
    from rescue.page.writer import DrawnFigures
    from rescue.worker.reporting import Metrics


@contextmanager
def page_drawn_meanwhile(
    out: Path, draw: bool = True, drawn: DrawnFigures | None = None
) -> Iterator[None]:
    """Draw report.html and plots/ of ``out`` in a thread while the body runs; wait for it.

    The body is Ray's shutdown: about a second of waiting for processes to end, which the
    drawing fills. report.json is already written, so a failure to draw costs the page and
    nothing else, and is said as a warning. ``drawn``: the figures drawn ahead
    (:class:`PagePainter`), not drawn again.

    >>> import tempfile
    >>> with page_drawn_meanwhile(Path(tempfile.mkdtemp())):  # no report.json: a warning
    ...     pass
    """

    def draw_page() -> None:
        try:
            from rescue.page.writer import write_report  # matplotlib only when drawing

            write_report(out, drawn)
        except Exception as exc:
            print(f"rescue: warning: report.html not written: {exc!r}", file=sys.stderr)

    painter = threading.Thread(target=draw_page, name="rescue-page", daemon=True)
    if draw:
        painter.start()
    try:
        yield
    finally:
        if draw:
            painter.join()


class PagePainter:
    """Listens to a rescue as its terminal does, and draws each ended run's figure while the
    next run trains, once that run has reported: a run's figure is most of the page's
    drawing, so at the end only the last run's and the overview are left to draw
    (:meth:`finally_drawn`). The driver's second core is idle meanwhile; the next run's start
    (on the driver) is left alone.

    >>> import tempfile
    >>> painter = PagePainter(Path(tempfile.mkdtemp()))
    >>> with painter.finally_drawn(draw=False):
    ...     pass
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.drawn: DrawnFigures | None = None  # made when first drawing: matplotlib then
        self._ahead: threading.Thread | None = None
        self._due = False  # a run ended: draw it at the next run's first report

    def run_started(self, record: RunRecord, changes: dict[str, list[Any]]) -> None:
        self._due = record.run > 0

    def reported(self, step: int, metrics: Metrics, findings: list[Finding]) -> None:
        if not self._due or (self._ahead is not None and self._ahead.is_alive()):
            return
        self._due = False
        self._ahead = threading.Thread(target=self._draw_ahead, name="rescue-page", daemon=True)
        self._ahead.start()

    def run_ended(self, record: RunRecord) -> None:
        pass

    def finished(self, report: RescueReport) -> None:
        pass

    def _draw_ahead(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: a thread has its own nice
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            from rescue.page.writer import DrawnFigures

            self.drawn = self.drawn or DrawnFigures()
            self.drawn.draw_ended(self.out)
        except Exception:  # the page at the end draws it again, and says what failed
            pass

    @contextmanager
    def finally_drawn(self, draw: bool = True) -> Iterator[None]:
        """The whole page, drawn while the body runs (:func:`page_drawn_meanwhile`), once any
        drawing ahead has finished."""
        if self._ahead is not None:
            self._ahead.join()
        with page_drawn_meanwhile(self.out, draw, self.drawn):
            yield
