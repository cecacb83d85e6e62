"""A throwaway HTTP server on 127.0.0.1 (never another interface), started and stopped by each test."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path
from typing import Iterator


class Recorder(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append(f"GET {self.path}")
        super().do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.requests.append(f"POST {self.path} {self.rfile.read(length)[:200]!r}")
        self.send_response(500)
        self.end_headers()


@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[http.server.ThreadingHTTPServer]:
    """Serve ``folder`` on 127.0.0.1 at a free port; ``server.requests`` lists what was asked."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Recorder, directory=str(folder)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def url(server, name: str = "") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{name}"
