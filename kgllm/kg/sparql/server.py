"""``kgllm serve-kg``: a KG folder served over the SPARQL 1.1 Protocol by the Oxigraph server
(the ``oxigraph`` PyPI package's CLI), read-only and on loopback by default.

The server reads an Oxigraph store: the KG's own ``oxigraph/`` (``build-kg --store oxigraph``), or
one kgllm bulk-loads once from the KG's RDF file into its cache (``$KGLLM_CACHE/oxigraph/``,
keyed by the KG's content, built in a temporary folder and renamed into place). The server is a
child process: :func:`serve` starts it on a free loopback port (or ``bind``), waits until it
answers a query, and stops it on exit, also on errors, Ctrl-C and SIGTERM; the child dies with
its parent even when the parent is SIGKILLed (``PR_SET_PDEATHSIG``). Query time is bounded on the
server (``--timeout-s``); result size is bounded by the client (:mod:`kgllm.kg.sparql.endpoint`), since
the Oxigraph server has no such limit. After ``update-kg`` restart the server: it keeps reading
the store it opened.

The Oxigraph server answers ``SERVICE`` by fetching from the named host and has no option to turn
that off, so kgllm runs it with outbound connections denied: a seccomp filter (Linux x86-64 and
arm64) makes ``connect()`` and addressed ``sendto()`` fail with ``EPERM``; accepting clients is
unaffected. ``allow_outbound`` (``serve-kg --allow-service``) lifts it; where the filter cannot be
installed, serving without it needs that flag.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from kgllm.util.errors import ConfigError, KGFormatError
from kgllm.util.io import stable_hash
from kgllm.kg.graph.folder import read_meta, rdf_file
from kgllm.kg.graph.rdf import STORE_DIR

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

    from kgllm.util.paths import cache_dir

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
    """``HOST:PORT`` of ``serve-kg --bind``, refused off the loopback unless ``allow_remote``."""
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
    """A TCP port free on ``host`` now (for tests and the server's default)."""
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


#: seccomp audit arch and syscall numbers of connect and sendto, per machine
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 42, 44), "aarch64": (0xC00000B7, 203, 206)}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def deny_outbound_program() -> _SockFprog | None:
    """A seccomp BPF program that fails ``connect()`` and ``sendto()`` with a destination address
    with ``EPERM`` and allows every other system call; ``None`` on machines it does not know.
    Hand-written because no dependency installs seccomp filters (libseccomp's bindings are not on PyPI)."""
    if platform.system() != "Linux" or platform.machine() not in _SECCOMP_ARCH:
        return None
    arch, connect, sendto = _SECCOMP_ARCH[platform.machine()]
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO
    code = [(ld, 0, 0, 4),                    # 0: seccomp_data.arch
            (jeq, 0, 8, arch),                # 1: another ABI -> allow
            (ld, 0, 0, 0),                    # 2: seccomp_data.nr
            (jeq, 7, 0, connect),             # 3: connect -> deny
            (jeq, 6, 0, connect | 0x40000000),  # 4: x32 connect -> deny
            (jeq, 0, 4, sendto),              # 5: not sendto -> allow
            (ld, 0, 0, 48),                   # 6: sendto's dest_addr, low half
            (jeq, 0, 3, 0),                   # 7: non-null -> deny
            (ld, 0, 0, 52),                   # 8: high half
            (jeq, 0, 1, 0),                   # 9: non-null -> deny
            (ret, 0, 0, allow),               # 10
            (ret, 0, 0, deny)]                # 11
    table = (_SockFilter * len(code))(*[_SockFilter(*c) for c in code])
    prog = _SockFprog(len(code), ctypes.cast(table, ctypes.POINTER(_SockFilter)))
    prog._keep = table  # the array must outlive the program
    return prog


def child_guard(prog: _SockFprog | None):
    """A ``preexec_fn``: the child dies with its parent (``PR_SET_PDEATHSIG``) and, with ``prog``,
    can open no outbound connection (seccomp). Everything is prepared in the parent; the child
    only makes system calls."""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def guard() -> None:
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
        if prog is not None:
            if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, needed by an unprivileged filter
                raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
            if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
                raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")

    return guard


@contextlib.contextmanager
def serve(kg_dir: str | Path | None, bind: str = "127.0.0.1:0", read_only: bool = True, timeout: float = 60,
          startup: float = 30, allow_remote: bool = False, allow_outbound: bool = False) -> Iterator[str]:
    """Run the Oxigraph server on the KG's store for the block; yields its base URL
    (``URL/query``, ``URL/update``, ``URL/store``). ``kg_dir=None`` with ``read_only=False``
    serves an empty in-memory store (a push target); a writable server of a KG folder serves a
    private copy of its store, removed with the server, so neither the folder nor the shared cached
    store is ever written. Port 0 picks a free one. The server can contact no other host
    (``SERVICE`` fails) unless ``allow_outbound``."""
    host, port = parse_bind(bind, allow_remote)
    prog = None if allow_outbound else deny_outbound_program()
    if prog is None and not allow_outbound:
        raise ConfigError(f"cannot deny the SPARQL server outbound connections on {platform.system()} "
                          f"{platform.machine()} (seccomp); pass --allow-service to serve it anyway")
    cmd = [oxigraph_binary(), "serve-read-only" if read_only else "serve"]
    copy = None
    if kg_dir is not None and read_only:
        cmd += ["--location", str(store_for(kg_dir))]
    elif kg_dir is not None:  # writes go to a copy that ends with the server
        copy = Path(tempfile.mkdtemp(prefix="kgllm-serve-"))
        shutil.copytree(store_for(kg_dir), copy / "store")
        cmd += ["--location", str(copy / "store")]
    elif read_only:
        raise ConfigError("a read-only server needs a KG folder")
    try:
        yield from _run(cmd, host, port, prog, timeout, startup)
    finally:
        if copy is not None:
            shutil.rmtree(copy, ignore_errors=True)


def _run(cmd: list[str], host: str, port: int, prog, timeout: float, startup: float) -> Iterator[str]:
    """Start ``cmd`` on ``host``:``port`` (a free port, retried, when 0), yield its URL, stop it."""
    for attempt in range(5):
        p = port or free_port(host)
        shown = f"[{host}]" if ":" in host else host
        log_file = tempfile.TemporaryFile()
        try:
            proc = subprocess.Popen([*cmd, "--bind", f"{shown}:{p}", "--timeout-s", str(max(int(timeout), 1))],
                                    stdout=subprocess.DEVNULL, stderr=log_file, preexec_fn=child_guard(prog))
        except subprocess.SubprocessError as exc:
            log_file.close()
            raise ConfigError(f"cannot start the SPARQL server with outbound connections denied ({exc}); pass "
                              "--allow-service to serve it without the filter") from None
        proc.log_file = log_file
        url = f"http://{shown}:{p}"
        try:
            wait_until_answering(url, proc, startup)
            break
        except BaseException as exc:
            _stop(proc)
            if not isinstance(exc, KGFormatError) or port or attempt == 4:  # a fixed port, or five taken ports
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
