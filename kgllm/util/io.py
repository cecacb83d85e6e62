"""Atomic file and folder writes (readers never see half-written output), output locks, and the
rule that ``--overwrite`` only ever replaces a folder kgllm wrote itself."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``path``; on success fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; the result follows the umask like open()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class OutputError(FileExistsError):
    """An output path cannot be written: it exists, is not ours to replace, or is locked."""


def check_replaceable(path: str | os.PathLike, marker: str | None, inputs: tuple = (), overwrite: bool = False,
                      own: frozenset | None = None) -> None:
    """Refuse to write ``path`` unless it is absent, or ``overwrite`` is set and it is a folder this
    tool wrote (it holds ``marker``) that holds none of ``inputs`` and, with ``own``, no entry
    whose name is not in ``own`` (files the user added); also refuse a ``path`` under a file."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"{path}: cannot create it, {parent} is a file")
    if not path.exists():
        return
    if not overwrite:
        raise OutputError(f"{path}: output folder exists (pass --overwrite)")
    if not path.is_dir() or marker is None or not (path / marker).is_file():
        raise OutputError(f"{path}: --overwrite only replaces a folder kgllm wrote (with {marker}); this one is "
                          "not, so nothing was deleted")
    theirs = sorted(p.name for p in path.iterdir() if p.name not in own) if own is not None else []
    if theirs:
        raise OutputError(f"{path}: holds files kgllm did not write ({', '.join(theirs[:5])}); --overwrite would "
                          "delete them, so nothing was deleted (move them out first)")
    here = path.resolve()
    for item in inputs:
        target = Path(item).resolve()
        if target == here or here in target.parents:
            raise OutputError(f"{path}: holds the input {item}; --overwrite would delete it, so nothing was deleted")


def real_dir(path: str | os.PathLike) -> Path:
    """``path`` with every symlink resolved: a folder reached through a link is written (and locked)
    where it really is, so two names of one folder never make two writers or turn a link into a copy."""
    return Path(os.path.realpath(path))


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on the real folder's sibling ``.<name>.lock`` for the
    block (symlinks resolved: every name of one folder takes the same lock); a second writer to the
    same output fails at once instead of mixing its files with ours."""
    import fcntl

    path = real_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"{path}: another kgllm process is writing it (lock {lock}); wait for it to "
                              "finish") from None
        try:  # the holder before us may have removed the file between our open and our lock: retry
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # while still holding it, so no one else can hold a lock on this inode
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False, marker: str | None = None,
               inputs: tuple = (), own: frozenset | None = None) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` only if the block succeeds.

    On an exception the temporary folder is removed, so a failed run leaves no
    half-written ``path`` behind (an existing ``path`` is kept untouched). An existing ``path``
    is replaced only with ``overwrite`` and only if it holds ``marker`` and none of ``inputs``
    (:func:`check_replaceable`).
    """
    path = Path(path)
    check_replaceable(path, marker, inputs, overwrite, own)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the result follows the umask like mkdir
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def exchange_dirs(new: str | os.PathLike, current: str | os.PathLike) -> None:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``): afterwards
    ``current`` holds what ``new`` held and ``new`` the old contents. Where the kernel or the file
    system lacks it, two renames (a reader may then see ``current`` missing for an instant; a kill
    between them leaves the old folder at ``new``, which the caller's recovery puts back)."""
    import ctypes

    new, current = os.fspath(new), os.fspath(current)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(current), rename_exchange) == 0:
            return
        err = ctypes.get_errno()
        if err not in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: fall back to two renames
            raise OSError(err, f"cannot swap {new} and {current}: {os.strerror(err)}")
    old = f"{new}.old"
    os.replace(current, old)
    os.replace(new, current)
    os.replace(old, new)


def current_umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    """Short sha256 of a JSON-serialisable object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


#: bidirectional-text controls that make a terminal show text in another order than it is
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def terminal_safe(text: str, keep: str = "\n\t") -> str:
    """``text`` with control characters (ANSI/OSC escape sequences, C1 controls, bidi overrides,
    line separators) written as ``\\xNN``/``\\uNNNN``, so a label from a KG cannot move the cursor,
    retitle the window or hide text when printed; characters in ``keep`` stay as they are."""
    import unicodedata

    def safe(ch: str) -> str:
        if ch in keep:
            return ch
        code = ord(ch)
        if code in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        return ch

    return "".join(map(safe, text)) if not text.isprintable() else text
