"""``make sandbox`` starts right after a previous sandbox stopped: the free-port probe binds the
way the server does (``SO_REUSEADDR``), so connections left in TIME_WAIT do not block it."""

from __future__ import annotations

import socket

from tests.sandbox.manage import HOST, _port_is_free


def _listener() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, 0))
    server.listen()
    return server


def test_a_port_in_time_wait_is_free() -> None:
    server = _listener()
    port = server.getsockname()[1]
    client = socket.create_connection((HOST, port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection is in TIME_WAIT
    client.close()
    server.close()
    assert _port_is_free(port)


def test_a_port_with_a_listener_is_not_free() -> None:
    server = _listener()
    try:
        assert not _port_is_free(server.getsockname()[1])
    finally:
        server.close()
