"""SPARQL: no data leaves the machine, values are bound parameters, queries are bounded in time and size."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kgllm.cli import main
from kgllm.util.errors import KGFormatError as QueryError  # kgllm.kg.sparql.local.QueryError is one
from kgllm.kg.sparql.local import open_graph, query
from tests.security.servers import http_server, url

LABELS = "SELECT ?name ?e WHERE { ?e rdfs:label ?name }"
CROSS = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"  # no row until done


@pytest.fixture(scope="module")
def stores(kg, tmp_path_factory):
    root = tmp_path_factory.mktemp("sparql")
    kg.save(root / "mem")
    kg.save(root / "ox", store="oxigraph")
    return root / "mem", root / "ox"


@pytest.mark.parametrize("store", ["memory", "oxigraph"])
def test_service_is_refused_and_nothing_is_sent(stores, tmp_path, store):
    folder = stores[1] if store == "oxigraph" else stores[0]
    with http_server(tmp_path) as server:
        q = f"SELECT ?x WHERE {{ ?e rdfs:label ?name . SERVICE <{url(server, 'sparql')}> {{ ?x ?p ?name }} }}"
        with pytest.raises(QueryError, match="SERVICE is refused"):
            query(open_graph(folder, store), q, {"name": "Hamburg"})
        assert main(["kg-query", str(folder), q, "--bind", "name=Hamburg", "--store", store]) == 1
        q_from = f"SELECT ?s FROM <{url(server, 'g.ttl')}> WHERE {{ ?s ?p ?o }}"
        with pytest.raises(QueryError, match="FROM"):
            query(open_graph(folder, store), q_from)
        time.sleep(0.2)
        assert server.requests == []


@pytest.mark.parametrize("store", ["memory", "oxigraph"])
def test_crafted_bind_values_stay_values(stores, store):
    """The attack on the old text splicing: a value ending in a newline and a quote, then syntax."""
    folder = stores[1] if store == "oxigraph" else stores[0]
    g = open_graph(folder, store)
    everything = query(g, LABELS)
    assert len(everything) > 3
    hostile = [("x\n\\", '") } UNION { ?e rdfs:label ?name } #'), ('a"', '} ?e ?p ?name . #'),
               ('\\"', ' ) VALUES ?e { ?e } #')]
    for first, second in hostile:
        q = "SELECT ?name ?other ?e WHERE { ?e rdfs:label ?name . OPTIONAL { ?e rdfs:comment ?other } }"
        assert query(g, q, {"name": first, "other": second}) == []
    label = everything[0]["name"]
    assert [r["name"] for r in query(g, LABELS, {"name": label})] == [label] * len(
        [r for r in everything if r["name"] == label])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_text_binds_as_one_literal(stores, value):
    g = open_graph(stores[0], "memory")
    rows = query(g, LABELS, {"name": value})
    assert all(r["name"] == value for r in rows)


def test_malformed_bind_is_a_usage_error(stores, capsys):
    for bad in ("name:Hamburg", "1x=Hamburg", "=Hamburg"):
        with pytest.raises(SystemExit) as exc:
            main(["kg-query", str(stores[0]), LABELS, "--bind", bad])
        assert exc.value.code == 2
    assert "--bind" in capsys.readouterr().err


@pytest.mark.parametrize("store", ["memory", "oxigraph"])
def test_timeout_and_row_limit(stores, store):
    from kgllm.kg.sparql.local import query_folder

    folder = stores[1] if store == "oxigraph" else stores[0]
    start = time.monotonic()
    with pytest.raises(QueryError, match="timeout"):
        query_folder(folder, CROSS, store=store, timeout=1.0)
    assert time.monotonic() - start < 20
    assert len(query_folder(folder, "SELECT * WHERE { ?s ?p ?o }", store=store, max_rows=7)) == 7


@pytest.mark.slow
def test_ctrl_c_stops_a_running_query(stores, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out, err = open(tmp_path / "out", "wb"), open(tmp_path / "err", "wb")  # files: nothing waits on pipes
    # a shell starts background jobs with SIGINT ignored, and Python then installs no Ctrl-C handler:
    # give the command the disposition of a foreground terminal program whatever runs this test
    proc = subprocess.Popen([sys.executable, "-m", "kgllm", "kg-query", str(stores[1]), CROSS, "--timeout", "600"],
                            stdout=out, stderr=err, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_group(proc.pid)) < 2:  # wait for the query process
            time.sleep(0.2)
        assert len(_group(proc.pid)) >= 2 and proc.poll() is None, "the query process never started"
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        out.close()
        err.close()
    message = (tmp_path / "err").read_bytes()
    assert proc.returncode == 130 and b"interrupted" in message and b"Traceback" not in message
    deadline = time.monotonic() + 10
    while _group(proc.pid) and time.monotonic() < deadline:  # the query process went with it
        time.sleep(0.2)
    assert not _group(proc.pid)


def _group(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (Linux /proc; zombies excluded)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found
