"""What every fake of an outside service shares: its WSGI app served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
from typing import Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LocalServer:
    """Serves `self._wsgi_app` on a free port of 127.0.0.1 in a background thread; also a context manager."""

    name = "fake-service"
    base_url = ""
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    def _wsgi_app(self, environ, start_response):
        raise NotImplementedError

    def start(self) -> Self:
        self._server = make_server("127.0.0.1", 0, self._wsgi_app, threaded=True, request_handler=_QuietRequestHandler)
        self.base_url = f"http://127.0.0.1:{self._server.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
