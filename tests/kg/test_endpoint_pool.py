"""The remote SPARQL client: keep-alive connections from one bounded pool; queries (idempotent)
retried after a 5xx answer or a reset connection, with backoff; pushes and updates never retried."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from kgllm.kg.sparql.endpoint import RETRIES, push, query_endpoint
from kgllm.kg.sparql.local import QueryError

ANSWER = json.dumps({"head": {"vars": ["x"]}, "results": {"bindings": [{"x": {"type": "literal", "value": "1"}}]}})


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers by a script shared by the server: each request pops its fate (``ok``, ``503`` or
    ``reset``: close the connection without a word); every request and connection is counted."""

    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests.append(self.path)
            fate = self.server.script.pop(0) if self.server.script else "ok"
        if fate == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = (ANSWER if fate == "ok" else "busy").encode()
        self.send_response(200 if fate == "ok" else int(fate))
        self.send_header("Content-Type", "application/sparql-results+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    srv.daemon_threads = True
    srv.lock, srv.connections, srv.requests, srv.script = threading.Lock(), 0, [], []
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_queries_share_one_keep_alive_connection(server):
    for _ in range(5):
        assert query_endpoint(_url(server), "SELECT ?x WHERE { ?x ?p ?o }") == [{"x": "1"}]
    assert len(server.requests) == 5 and server.connections == 1


@pytest.mark.parametrize("fate", ["503", "reset"])
def test_a_query_is_retried_after_a_5xx_or_a_reset(server, fate):
    server.script = [fate, fate]
    assert query_endpoint(_url(server), "SELECT ?x WHERE { ?x ?p ?o }") == [{"x": "1"}]
    assert len(server.requests) == 3


def test_retries_are_bounded(server):
    server.script = ["503"] * (RETRIES + 5)
    with pytest.raises(QueryError, match="HTTP 503"):
        query_endpoint(_url(server), "SELECT ?x WHERE { ?x ?p ?o }")
    assert len(server.requests) == RETRIES + 1


def test_a_push_is_never_retried(server, kg_dir):
    server.script = ["503"]  # the first Graph Store POST fails; then the clean-up DROP (an update) is sent once
    with pytest.raises(QueryError, match="HTTP 503"):
        push(kg_dir, _url(server), "https://example.org/g", progress=False)
    assert [p.split("?")[0] for p in server.requests] == ["/store", "/update"]
