"""systemd's notify protocol: one datagram per message to ``$NOTIFY_SOCKET``.

The unit is ``Type=notify`` with a watchdog (config/ordersync.service): the daemon sends
``READY=1`` once it has opened the ledger, ``WATCHDOG=1`` each time it writes its heartbeat
(only while its loops make progress), ``STATUS=...`` and ``STOPPING=1``. Without
``NOTIFY_SOCKET`` (not under systemd) nothing is sent. An address starting with ``@`` is an
abstract socket (a leading NUL byte).

Written here rather than taken from PyPI: systemd-python compiles against libsystemd's
headers, and sdnotify is unmaintained; the protocol is one ``sendto`` on a datagram socket.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger("ordersync.sdnotify")


class Notifier:
    """Sends notify messages to the socket systemd named, if any."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._failed = False

    def notify(self, *messages: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False when not sent (logged once)."""
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(messages).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("sd_notify_failed", error=exc.strerror or str(exc))
                self._failed = True
            return False
        self._failed = False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
