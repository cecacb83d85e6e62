"""Round two, serving and endpoints: a deadline that holds against a trickling server, a server that
dies with its parent and contacts no other host, kg-push that cannot be pointed at another graph,
and bindings that must name a variable of the query. Every server binds 127.0.0.1 and is stopped."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from kgllm.cli import main
from kgllm.kg.sparql.endpoint import push, query_endpoint
from kgllm.kg.sparql.local import QueryError, query_folder
from kgllm.kg.sparql.server import serve

LOOKUP = "SELECT ?e ?name WHERE { ?e rdfs:label ?name }"


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Headers at once, then one byte every 0.2 s for up to 30 s."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.end_headers()
        end = time.monotonic() + 30
        try:
            while time.monotonic() < end and not self.server.stopping.is_set():
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass


class _Listener(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    do_POST = do_GET


def _start(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.stopping, server.hits = threading.Event(), []
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _close(server) -> None:
    server.stopping.set()
    server.shutdown()
    server.server_close()


def test_endpoint_timeout_holds_against_a_trickling_server():
    server = _start(_Trickle)
    try:
        start = time.monotonic()
        with pytest.raises(QueryError, match="stopped after the 1.5 s timeout"):
            query_endpoint(f"http://127.0.0.1:{server.server_address[1]}", "ASK {}", timeout=1.5)
        assert time.monotonic() - start < 4
    finally:
        _close(server)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/query?query=ASK%7B%7D", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _serve_kg(kg_dir: Path, tmp_path: Path) -> tuple[subprocess.Popen, int]:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kgllm", "serve-kg", str(kg_dir), "--bind", f"127.0.0.1:{number}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    line = proc.stdout.readline().decode()
    assert "serving" in line, line
    assert _answers(number)
    return proc, number


def _gone(port: int, seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _answers(port):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_served_kg_dies_with_its_parent(kg_dir, tmp_path, sig):
    proc, port = _serve_kg(kg_dir, tmp_path)
    try:
        proc.send_signal(sig)
        code = proc.wait(20)
        assert _gone(port), "the Oxigraph child still answers after its parent ended"
        if sig == signal.SIGTERM:
            assert code == 0  # stopped cleanly, like Ctrl-C
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_served_kg_contacts_no_other_host(kg_dir):
    """A SERVICE query POSTed straight to the server (not through kgllm's refusing client) makes no
    request to the listener: the server's outbound connections are denied."""
    listener = _start(_Listener)
    try:
        target = f"http://127.0.0.1:{listener.server_address[1]}/x"
        with serve(kg_dir) as url:
            body = f"SELECT * WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}".encode()
            req = urllib.request.Request(url + "/query", data=body, method="POST",
                                         headers={"Content-Type": "application/sparql-query"})
            try:
                with urllib.request.urlopen(req, timeout=20) as resp:
                    resp.read()
            except OSError:
                pass  # an error answer is fine; a request to the listener is not
            assert query_endpoint(url, LOOKUP, {"name": "Barack Obama"})  # still serves
        time.sleep(0.3)
        assert listener.hits == []
    finally:
        _close(listener)


def test_push_refuses_a_store_url_with_its_own_query(kg_dir, capsys):
    graph = "https://example.org/graphs/kg"
    with serve(None, read_only=False) as url:
        push(kg_dir, url, graph, progress=False)
        before = query_endpoint(url, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
        code = main(["kg-push", str(kg_dir), "--endpoint", url, "--graph", "urn:other", "--no-progress",
                     "--store-url", f"{url}/store?graph={graph}&x="])
        assert code == 1 and "query string" in capsys.readouterr().err
        after = query_endpoint(url, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
    assert before == after and before[0]["n"] > 0


def test_an_unknown_bound_variable_is_an_error_everywhere(kg_dir, capsys):
    for store in ("memory", "oxigraph"):
        with pytest.raises(QueryError, match="no variable \\?nmae"):
            query_folder(kg_dir, LOOKUP, {"nmae": "Barack Obama"}, store=store)
    with pytest.raises(QueryError, match="no variable \\?nmae"):
        query_endpoint("http://127.0.0.1:9", LOOKUP, {"nmae": "x"})  # refused before any request
    assert main(["kg-query", str(kg_dir), LOOKUP, "--bind", "nmae=x"]) == 1
    assert "no variable ?nmae" in capsys.readouterr().err
    assert query_folder(kg_dir, LOOKUP, {"name": "Barack Obama"})  # a known one still binds


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300"])
def test_infinite_timeouts_are_usage_errors(kg_dir, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kg-query", str(kg_dir), LOOKUP, "--timeout", value])
    assert exc.value.code == 2 and "--timeout" in capsys.readouterr().err
