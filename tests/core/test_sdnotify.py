"""sdnotify.py against real datagram sockets (tests/test_server.py covers the daemon's own
messages on an abstract socket)."""

from __future__ import annotations

import socket

from structlog.testing import capture_logs

from ordersync.sdnotify import Notifier


def test_messages_reach_a_socket_path_as_one_datagram(tmp_path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        try:
            assert notifier.notify("READY=1", "STATUS=polling 2 vendor instances")
            assert sock.recv(4096) == b"READY=1\nSTATUS=polling 2 vendor instances"
        finally:
            notifier.close()


def test_without_systemd_nothing_is_sent_and_a_gone_socket_is_logged_once(tmp_path):
    assert Notifier({}).notify("READY=1") is False
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with capture_logs() as logs:
        assert gone.notify("WATCHDOG=1") is False
        assert gone.notify("WATCHDOG=1") is False
    gone.close()
    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]
