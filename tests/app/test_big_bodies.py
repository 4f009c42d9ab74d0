"""A body is bounded before it is read, and the key is checked before the body: a real server, sent a
300 MB chunked body without a key, answers 401 having read almost none of it (issue #19)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from app_helpers import PARTNER_KEY, copy_bundle
from test_server import _serve

CHUNK = b"x" * 65_536
BODY_BYTES = 300 * 1024 * 1024


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    models = tmp_path_factory.mktemp("big-bodies")
    copy_bundle(models)
    with _serve(models, models.parent / "server.log") as served:
        # Start-up's background work settled first: tomorrow's lists computed ahead read the city's
        # data (~100 MB), which is not the body's memory. Each answers once its list is stored.
        for limit in (100, 50):
            daily = f"{served[0]}/v1/inspections/chicago/daily"
            httpx.get(daily, params={"limit": limit}, timeout=180).raise_for_status()
        yield served


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _open(url: str, headers: dict[str, str]) -> socket.socket:
    """A connection that has sent the headers of a chunked POST to the outcomes route."""
    parts = urlsplit(url)
    lines = [
        "POST /v1/inspections/chicago/outcomes HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    connection = socket.create_connection((parts.hostname, parts.port), timeout=30)
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return connection


def _send_chunk(connection: socket.socket) -> bool:
    try:
        connection.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
    except OSError:  # the server closed the connection: it reads no more
        return False
    return True


def _status(connection: socket.socket, answer: bytes = b"") -> int:
    while b"\r\n" not in answer:
        answer += connection.recv(65_536)
    return int(answer.split(b" ", 2)[1])


def test_a_huge_chunked_body_without_a_key_is_refused_unread(one_worker: tuple[str, int]) -> None:
    url, pid = one_worker
    before = _rss_mb(pid)
    with _open(url, {}) as connection:
        assert _send_chunk(connection)
        # 64 KB of a 300 MB body sent, and no more until the server answers: a server that read the
        # body before the key would wait here for the rest, and the recv would time out.
        connection.settimeout(10)
        assert _status(connection) == 401
        sent = len(CHUNK)
        while sent < BODY_BYTES and _send_chunk(connection):  # the rest, for as long as it is taken
            sent += len(CHUNK)
    assert _rss_mb(pid) - before < 50


def test_a_huge_chunked_body_with_a_key_is_refused_past_the_route_limit(one_worker: tuple[str, int]) -> None:
    url, pid = one_worker
    before = _rss_mb(pid)
    with _open(url, {"X-API-Key": PARTNER_KEY}) as connection:
        sent = 0
        # Whole chunks (a partial one would break the framing), each after checking for an answer.
        while sent < BODY_BYTES and not select.select([connection], [], [], 0)[0]:
            if not _send_chunk(connection):
                break
            sent += len(CHUNK)
        assert _status(connection) == 413
    # The route reads at most 8 MiB; the socket buffers between client and server hold a few MB more.
    assert sent < 16 * 1024 * 1024, f"{sent} bytes went out before the 413"
    assert _rss_mb(pid) - before < 50
