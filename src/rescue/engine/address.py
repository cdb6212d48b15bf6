"""A Ray cluster address, checked before anything starts: a wrong one is bad input in a few
seconds, not a hang in Ray's own retries.

>>> check_address("auto"), check_address("ray://head:10001")
(None, None)
>>> check_address("::::")
Traceback (most recent call last):
...
rescue.errors.RescueError: --address '::::': expected HOST:PORT, ray://HOST:PORT or auto
"""

from __future__ import annotations

import re
import socket

from rescue.errors import RescueError

_HOST_PORT = re.compile(r"([\w.\-]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})")


def check_address(address: str, seconds: float = 3.0) -> None:
    """Refuse an address Ray cannot read, and a ``HOST:PORT`` where nothing answers within
    ``seconds`` (``auto``, ``local`` and ``ray://`` addresses are left to Ray)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    match = _HOST_PORT.fullmatch(address)
    if match is None:
        raise RescueError(f"--address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    host = match[1].strip("[]")
    try:
        socket.create_connection((host, int(match[2])), timeout=seconds).close()
    except (OSError, OverflowError) as exc:
        raise RescueError(
            f"--address {address}: no Ray cluster answers there "
            f"({getattr(exc, 'strerror', None) or exc}); check the head node's address and port "
            "(`ray status` on it)"
        ) from None
