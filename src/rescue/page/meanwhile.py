"""Drawing the page while the supervisor does something else that waits."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def page_drawn_meanwhile(out: Path, draw: bool = True) -> Iterator[None]:
    """Draw report.html and plots/ of ``out`` in a thread while the body runs; wait for it.

    The body is Ray's shutdown: about a second of waiting for processes to end, which the
    drawing (about a second of matplotlib) fills. report.json is already written, so a failure
    to draw costs the page and nothing else, and is said as a warning.

    >>> import tempfile
    >>> with page_drawn_meanwhile(Path(tempfile.mkdtemp())):  # no report.json: a warning
    ...     pass
    """

    def draw_page() -> None:
        try:
            from rescue.page.writer import write_report  # matplotlib only when drawing

            write_report(out)
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
