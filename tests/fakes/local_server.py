"""What every fake of an outside service shares: its WSGI app served over real HTTP on 127.0.0.1, answering as
fast as a real provider does (`latency`) or not at all for a while (`hang`)."""

from __future__ import annotations

import threading
import time
from typing import Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

POLL_SECONDS = 0.05  # how often a server looks for `stop()`: the default half second would be paid per test


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args) -> None:
        pass  # a client that gave up on a slow answer (its read timeout) is what the slow modes are for


class LocalServer:
    """Serves `self._wsgi_app` on a free port of 127.0.0.1 in a background thread; also a context manager.

    `latency` (seconds) delays every answer, as a real provider's response time does (Stripe creates a Checkout
    Session in about 300 ms): benchmarks set it from `--provider-latency-ms`, tests set it directly.
    `hang(seconds)` makes the service answer nothing for that long: requests that arrive meanwhile are held until
    it ends, then answered, by which time their clients have usually given up. Setting `latency` or calling
    `hang` again re-times the requests already waiting (`hang(0)` and `latency = 0` answer them at once).
    `arrivals` lists "METHOD /path" of every request as it arrives, before any delay.
    """

    name = "fake-service"
    base_url = ""
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None
    _latency = 0.0
    _hang_until = 0.0
    _slow: threading.Condition | None = None
    _arrivals: list[str] | None = None

    def _wsgi_app(self, environ, start_response):
        raise NotImplementedError

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._condition():
            self._latency = seconds
            self._condition().notify_all()

    def hang(self, seconds: float) -> None:
        """No answer to anything for `seconds` from now; `hang(0)` ends a hang at once."""
        with self._condition():
            self._hang_until = time.monotonic() + seconds
            self._condition().notify_all()

    @property
    def arrivals(self) -> list[str]:
        with self._condition():
            return list(self._arrivals or [])

    def reset(self) -> None:
        """Answer at once again (no latency, no hang) and forget the arrivals; subclasses forget their state too."""
        self.latency = 0
        self.hang(0)
        with self._condition():
            self._arrivals = []

    def _condition(self) -> threading.Condition:
        if self._slow is None:
            self._slow = threading.Condition()
        return self._slow

    def _delayed_wsgi_app(self, environ, start_response):
        arrived = time.monotonic()
        condition = self._condition()
        with condition:
            if self._arrivals is None:
                self._arrivals = []
            self._arrivals.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
            while (left := max(arrived + self._latency, self._hang_until) - time.monotonic()) > 0:
                condition.wait(left)
        return self._wsgi_app(environ, start_response)

    def start(self) -> Self:
        self._condition()
        self._server = make_server(
            "127.0.0.1", 0, self._delayed_wsgi_app, threaded=True, request_handler=_QuietRequestHandler
        )
        self.base_url = f"http://127.0.0.1:{self._server.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.latency = 0
        self.hang(0)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
