"""``kgllm serve-kg``: a KG folder served over the SPARQL 1.1 Protocol by the Oxigraph server
(the ``oxigraph`` PyPI package's CLI), read-only and on loopback by default.

The server reads an Oxigraph store: the KG's own ``oxigraph/`` (``build-kg --store oxigraph``), or
one kgllm bulk-loads once from the KG's RDF file into its cache (``$KGLLM_CACHE/oxigraph/``,
keyed by the KG's content, built in a temporary folder and renamed into place). The server is a
child process: :func:`serve` starts it on a free loopback port (or ``bind``), waits until it
answers a query, and stops it on exit, also on errors and Ctrl-C. Query time is bounded on the
server (``--timeout-s``); result size is bounded by the client (:mod:`kgllm.kg.endpoint`), since
the Oxigraph server has no such limit. After ``update-kg`` restart the server: it keeps reading
the store it opened.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from kgllm.errors import ConfigError, KGFormatError
from kgllm.io import stable_hash
from kgllm.kg.folder import read_meta, rdf_file
from kgllm.kg.rdf import STORE_DIR

log = logging.getLogger(__name__)

DEFAULT_BIND = "127.0.0.1:7878"


def oxigraph_binary() -> str:
    """The ``oxigraph`` server CLI next to this Python (the pinned PyPI package), else on ``PATH``."""
    here = Path(sys.executable).parent / "oxigraph"
    found = str(here) if here.is_file() else shutil.which("oxigraph")
    if not found:
        raise ConfigError("the Oxigraph server is not installed: pip install oxigraph==0.5.13 (a kgllm dependency)")
    return found


def store_for(kg_dir: str | Path) -> Path:
    """An Oxigraph store holding the KG's RDF: its own ``oxigraph/`` or a cached bulk load."""
    import pyoxigraph as ox

    from kgllm.paths import cache_dir

    kg_dir = Path(kg_dir)
    meta = read_meta(kg_dir)
    if not meta:
        raise KGFormatError(f"{kg_dir}: not a KG folder (no meta.json)")
    if (kg_dir / STORE_DIR).is_dir():
        return kg_dir / STORE_DIR
    source = rdf_file(kg_dir)
    if not source.is_file():
        raise KGFormatError(f"{source}: RDF file missing")
    st = source.stat()
    key = stable_hash({"meta": meta, "rdf": [source.name, st.st_size, st.st_mtime_ns]})
    target = cache_dir() / "oxigraph" / f"{kg_dir.name}-{key}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        store = ox.Store(str(tmp))
        fmt = ox.RdfFormat.N_TRIPLES if source.suffix == ".nt" else ox.RdfFormat.TURTLE
        store.bulk_load(path=str(source), format=fmt)
        store.flush()
        del store
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("loaded %s into the Oxigraph store %s", source, target)
    return target


def parse_bind(bind: str, allow_remote: bool = False) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    try:
        port_n = int(port)
        addr = ipaddress.ip_address(host.strip("[]") if host != "localhost" else "127.0.0.1")
    except ValueError:
        raise ConfigError(f"--bind must be IP:PORT (e.g. {DEFAULT_BIND}), got {bind!r}") from None
    if not addr.is_loopback and not allow_remote:
        raise ConfigError(f"--bind {bind} would serve the KG to other machines; pass --allow-remote to do that")
    if not 0 <= port_n < 65536:
        raise ConfigError(f"--bind port must be 0-65535, got {port_n}")
    return str(addr), port_n


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until_answering(url: str, proc: subprocess.Popen, startup: float) -> None:
    """Poll ``url/query`` with ``ASK {}`` until it answers, the process exits, or ``startup`` s pass."""
    import urllib.request
    from urllib.parse import quote

    deadline = time.monotonic() + startup
    while True:
        if proc.poll() is not None:
            err = ""
            log_file = getattr(proc, "log_file", None)  # a temporary file: a pipe could fill up and block it
            if log_file is not None:
                log_file.seek(0)
                err = log_file.read().decode(errors="replace")[-500:]
            raise KGFormatError(f"the Oxigraph server exited with status {proc.returncode}: {err.strip()}")
        try:
            with urllib.request.urlopen(f"{url}/query?query={quote('ASK {}')}", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise KGFormatError(f"the Oxigraph server did not answer on {url} within {startup:g} s")
        time.sleep(0.1)


@contextlib.contextmanager
def serve(kg_dir: str | Path | None, bind: str = "127.0.0.1:0", read_only: bool = True, timeout: float = 60,
          startup: float = 30, allow_remote: bool = False) -> Iterator[str]:
    """Run the Oxigraph server on the KG's store for the block; yields its base URL
    (``URL/query``, ``URL/update``, ``URL/store``). ``kg_dir=None`` with ``read_only=False``
    serves an empty in-memory store (a push target). Port 0 picks a free one."""
    host, port = parse_bind(bind, allow_remote)
    cmd = [oxigraph_binary(), "serve-read-only" if read_only else "serve"]
    if kg_dir is not None:
        cmd += ["--location", str(store_for(kg_dir))]
    elif read_only:
        raise ConfigError("a read-only server needs a KG folder")
    for attempt in range(5):
        p = port or free_port(host)
        shown = f"[{host}]" if ":" in host else host
        log_file = tempfile.TemporaryFile()
        proc = subprocess.Popen([*cmd, "--bind", f"{shown}:{p}", "--timeout-s", str(max(int(timeout), 1))],
                                stdout=subprocess.DEVNULL, stderr=log_file)
        proc.log_file = log_file
        url = f"http://{shown}:{p}"
        try:
            wait_until_answering(url, proc, startup)
            break
        except KGFormatError:
            _stop(proc)
            if port or attempt == 4:  # a fixed port, or five free ports taken by others in between
                raise
    try:
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log_file = getattr(proc, "log_file", None)
    if log_file is not None:
        log_file.close()
