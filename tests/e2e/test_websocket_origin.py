"""A page on another site cannot open the app's websocket (cross-site websocket hijacking)."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlparse


def handshake_status(base_url: str, origin: str) -> int:
    """The HTTP status the server answers a websocket upgrade of /_stcore/stream with."""
    url = urlparse(base_url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n"
        f"Origin: {origin}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(request.encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def test_a_foreign_origin_handshake_is_refused(base_url: str):
    assert handshake_status(base_url, "https://evil.example") == 403
    assert handshake_status(base_url, "http://attacker.test:8501") == 403


def test_a_same_origin_handshake_is_accepted(base_url: str):
    assert handshake_status(base_url, base_url) == 101
