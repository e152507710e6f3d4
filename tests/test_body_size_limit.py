"""Bodies larger than MAX_CONTENT_LENGTH are refused with 413 before they are read: declared (Content-Length) or
streamed (chunked, no Content-Length); JSON under /api and /webhooks, a page elsewhere. Over real HTTP, against the
development server and against `gunicorn app:app`, which is what production runs."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1024 * 1024
DECLARED = 800_000_000  # the review's body: one worker went to 3.3 GB reading it


def declaring(url: str, path: str, length: int, content_type: str = "application/json") -> tuple[int, str, bytes]:
    """POST that announces `length` bytes but sends only a few: an answer proves the server read none of the rest."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", content_type)
        connection.putheader("Content-Length", str(length))
        connection.endheaders(b"{" + b" " * 1000)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def streaming(url: str, path: str, size: int) -> tuple[int, bytes]:
    """POST a chunked body (no Content-Length) of `size` bytes; returns the status and the response body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        chunk = b" " * 65536
        try:
            for _ in range(size // len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before taking the rest: the answer is what counts
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def _checks(url: str) -> None:
    status, content_type, body = declaring(url, "/webhooks/stripe", DECLARED)
    assert (status, content_type) == (413, "application/json"), body
    assert json.loads(body)["error"] == "too_large" and "1024 KiB" in json.loads(body)["message"]

    status, content_type, body = declaring(url, "/api/v1/sessions/1/checkout", DECLARED)
    assert (status, json.loads(body)["error"]) == (413, "too_large")

    status, content_type, body = declaring(url, "/login", DECLARED, "application/x-www-form-urlencoded")
    assert status == 413 and content_type.startswith("text/html") and b"too large" in body

    status, body = streaming(url, "/webhooks/stripe", LIMIT + 256 * 1024)
    assert status == 413 and json.loads(body)["error"] == "too_large"

    status, body = streaming(url, "/webhooks/stripe", 64 * 1024)  # under the limit: read, and judged on its merits
    assert status == 400 and json.loads(body)["error"] == "invalid_signature"


def test_oversized_bodies_are_refused_before_they_are_read(live_server):
    server = live_server()
    _checks(server.url)
    assert requests.get(server.url + "/", timeout=10).status_code == 200  # the server is still fine


@pytest.fixture
def gunicorn(database_url, stripe_config) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "WEBINAR_PAY_ENV": "test",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "DATABASE_URL": database_url,
        "BASE_URL": url,
        "SCHEDULER_ENABLED": "0",
        "RATELIMIT_ENABLED": "0",
        "STRIPE_SECRET_KEY": stripe_config["STRIPE_SECRET_KEY"],
        "STRIPE_WEBHOOK_SECRET": stripe_config["STRIPE_WEBHOOK_SECRET"],
        "STRIPE_API_BASE": stripe_config["STRIPE_API_BASE"],
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "app:app",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "1",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        for _ in range(600):
            try:
                requests.get(url + "/", timeout=10)
                break
            except requests.RequestException:
                assert process.poll() is None, "gunicorn did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_oversized_bodies_are_refused_before_they_are_read_under_gunicorn(gunicorn):
    _checks(gunicorn)
