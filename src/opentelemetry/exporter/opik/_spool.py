"""Disk spool: what could not be delivered is kept on disk and re-sent later.

Layout of ``OTEL_EXPORTER_OPIK_SPOOL_DIR``::

    <dir>/<time_ns>-<host>-<pid>-<rand>.opikspool   ready to be re-sent (oldest first)
    <dir>/claimed/<name>~<host>~<pid>~<token>~<ms>  being re-sent by one process
    <dir>/tmp/...                                   being written (never read)
    <dir>/corrupt/<name>                            unreadable, moved aside with a warning

Crash safety: a file is written under ``tmp/``, fsynced, then renamed into
place, so a reader sees whole files only. Several processes may share one
directory: a batch is *claimed* by an atomic ``rename`` into ``claimed/`` (only
one process wins), and deleted once resolved, so no batch is sent twice. A
claim left by a process that died (pid gone, or a different process token on
the same pid, as after a container restart) or older than ``stale_after`` is
put back. The directory never grows beyond ``max_bytes``: a write that does
not fit stores what fits and reports how many items that was.

File format (the item bodies are stored verbatim, so a re-send is
byte-identical and Opik's upserts stay stable)::

    OPIKSPOOL 1 <count> <sha256 of the rest>\\n
    {"k": kind, "i": id, "l": label, "n": body length}\\n<body>\\n   (count times)
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import socket
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Tuple

from ._config import ConfigError
from ._items import Item
from ._json import dumps, loads

if TYPE_CHECKING:  # pragma: no cover
    from ._stats import Stats

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the in-process lock only
    fcntl = None  # type: ignore[assignment]

_logger = logging.getLogger("opentelemetry.exporter.opik")

SUFFIX = ".opikspool"
_MAGIC = b"OPIKSPOOL"
_VERSION = 1
#: files per write are cut at these sizes so a re-send loads a bounded amount
FILE_MAX_ITEMS = 1000
FILE_MAX_BYTES = 8 * 1024 * 1024
#: the durable queue re-scans the directory's size at most this often (seconds); between scans it
#: counts its own writes and not the deletions, so it errs on the side of the bound
USAGE_RESCAN = 1.0
#: a tmp file this old is a leftover of a crash while writing
TMP_STALE_SECONDS = 3600.0
_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname() or "host")[:40] or "host"


def _new_token() -> str:
    return uuid.uuid4().hex[:12]


#: identifies this process incarnation (a restarted container may reuse the pid)
_TOKEN = _new_token()


def _refresh_token() -> None:
    global _TOKEN
    _TOKEN = _new_token()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_refresh_token)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


class SpoolError(ConfigError):
    """The spool directory cannot be used (the message names the setting)."""


class Claim:
    """A spooled batch this process has claimed; resolve it with done/release/keep_only."""

    def __init__(self, spool: "Spool", path: str, name: str, items: List[Item]) -> None:
        self.spool = spool
        self.path = path
        self.name = name
        self.items = items

    def done(self) -> None:
        """Every item was resolved (delivered or definitively rejected): forget the file."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            _logger.warning("Opik spool: could not delete re-sent batch %s: %s", self.path, exc)

    def release(self) -> None:
        """Nothing could be delivered now: put the file back for a later attempt."""
        try:
            os.rename(self.path, os.path.join(self.spool.directory, self.name))
        except OSError as exc:
            _logger.warning("Opik spool: could not release %s (it will be retried after %d s): %s",
                            self.path, int(self.spool.stale_after), exc)

    def keep_only(self, items: Sequence[Item]) -> None:
        """Some items were resolved: keep the rest (atomically), then release."""
        if not items:
            self.done()
            return
        try:
            tmp = self.spool._write_tmp(list(items))
            os.replace(tmp, self.path)
        except OSError as exc:
            _logger.warning("Opik spool: could not rewrite %s; its delivered items may be re-sent "
                            "(Opik upserts them, no duplicate): %s", self.path, exc)
        self.release()


class Spool:
    """A bounded, crash-safe, multi-process directory of undelivered batches."""

    def __init__(self, directory: str, max_bytes: int, *, stale_after: float = 900.0) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.max_bytes = int(max_bytes)
        self.stale_after = float(stale_after)
        self._claimed = os.path.join(self.directory, "claimed")
        self._tmp = os.path.join(self.directory, "tmp")
        self._corrupt = os.path.join(self.directory, "corrupt")
        self._lock = threading.Lock()
        #: bytes in use as of the last scan (plus this process's writes since), for ``write_owned``
        self._usage = 0
        self._usage_at = -USAGE_RESCAN
        #: where ``spool_files_corrupt`` is counted (the writer that sends from this spool sets it)
        self.stats: Optional["Stats"] = None
        try:
            for d in (self.directory, self._claimed, self._tmp, self._corrupt):
                os.makedirs(d, exist_ok=True)
            probe = os.path.join(self._tmp, f".probe-{os.getpid()}-{_new_token()}")
            with open(probe, "wb"):
                pass
            os.unlink(probe)
        except OSError as exc:
            raise SpoolError(
                f"OTEL_EXPORTER_OPIK_SPOOL_DIR={directory!r} is not a writable directory ({exc.strerror or exc}); "
                "fix the path or its permissions, or unset it to keep undelivered spans in memory only"
            ) from None
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _reset_lock(ref))

    # -- writing ---------------------------------------------------------------------
    def write(self, items: Sequence[Item]) -> int:
        """Store ``items`` (in order) in as many files as needed; returns how many fit."""
        items = list(items)
        if not items:
            return 0
        written = 0
        with self._locked():
            used = self.usage()
            while written < len(items):
                chunk = self._fit(items[written:], self.max_bytes - used)
                if not chunk and self._evict_corrupt():
                    used = self.usage()
                    chunk = self._fit(items[written:], self.max_bytes - used)
                if not chunk:
                    break
                name = f"{time.time_ns():020d}-{_HOST}-{os.getpid()}-{_new_token()[:8]}{SUFFIX}"
                try:
                    tmp = self._write_tmp(chunk)
                    size = os.path.getsize(tmp)
                    os.rename(tmp, os.path.join(self.directory, name))
                except OSError as exc:
                    _logger.error("Opik spool: could not write to %s: %s", self.directory, exc)
                    break
                used += size
                written += len(chunk)
            self._fsync_dir()
        return written

    def write_owned(self, items: Sequence[Item]) -> Optional[Claim]:
        """Store ``items`` as one file claimed by this process (the durable queue's segment), unsynced.

        The file is whole once this returns (written under ``tmp/``, then renamed), so it survives
        this process being killed; the caller fsyncs it (:meth:`sync`) within its bound, for a power
        cut. None if it does not fit ``max_bytes`` or cannot be written. While this process lives the
        file is its own; once it is gone, :meth:`recover` puts the file back for any process to re-send.
        """
        data = self._encode(items)
        with self._locked():
            now = time.monotonic()
            if now - self._usage_at > USAGE_RESCAN:  # a directory scan per export would grow with the backlog
                self._usage, self._usage_at = self.usage(), now
            if self._usage + len(data) > self.max_bytes:
                return None
            name = f"{time.time_ns():020d}-{_HOST}-{os.getpid()}-{_new_token()[:8]}{SUFFIX}"
            dst = os.path.join(self._claimed, f"{name}~{_HOST}~{os.getpid()}~{_TOKEN}~{int(time.time() * 1000)}")
            try:
                tmp = self._write_tmp_data(data, fsync=False)
                os.rename(tmp, dst)
            except OSError as exc:
                _logger.error("Opik spool: could not write to %s: %s", self.directory, exc)
                return None
            self._usage += len(data)
        return Claim(self, dst, name, list(items))

    def sync(self, paths: Sequence[str]) -> None:
        """fsync ``paths`` (those still there) and the directories that name them."""
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue  # resolved and deleted meanwhile
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)
        self._fsync_dir(self._claimed)
        self._fsync_dir()

    def _fit(self, items: Sequence[Item], budget: int) -> List[Item]:
        """The longest prefix of ``items`` that fits one file and ``budget`` bytes."""
        out: List[Item] = []
        size = 90  # header
        limit = min(budget, FILE_MAX_BYTES)
        for item in items:
            add = len(self._meta(item)) + item.size + 2
            if len(out) >= FILE_MAX_ITEMS or size + add > limit:
                if not out and size + add <= budget:  # one item bigger than a file: alone
                    out.append(item)
                break
            out.append(item)
            size += add
        return out

    @staticmethod
    def _meta(item: Item) -> bytes:
        return dumps({"k": item.kind, "i": item.id, "l": item.label, "n": item.size})

    def _encode(self, items: Sequence[Item]) -> bytes:
        parts: List[bytes] = []
        for item in items:
            parts += [self._meta(item), b"\n", item.body, b"\n"]
        rest = b"".join(parts)
        header = b"%s %d %d %s\n" % (_MAGIC, _VERSION, len(items), hashlib.sha256(rest).hexdigest().encode())
        return header + rest

    def _write_tmp(self, items: List[Item]) -> str:
        return self._write_tmp_data(self._encode(items), fsync=True)

    def _write_tmp_data(self, data: bytes, fsync: bool) -> str:
        tmp = os.path.join(self._tmp, f"{os.getpid()}-{_new_token()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return tmp

    def _fsync_dir(self, directory: Optional[str] = None) -> None:
        try:
            fd = os.open(directory or self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- reading -------------------------------------------------------------------
    def _ready(self) -> List[str]:
        try:
            return sorted(n for n in os.listdir(self.directory) if n.endswith(SUFFIX))
        except OSError:
            return []

    def pending(self) -> bool:
        """True if some batch is waiting to be re-sent (by any process)."""
        return bool(self._ready())

    def pending_files(self) -> int:
        return len(self._ready())

    def claim(self) -> Optional[Claim]:
        """Claim the oldest ready batch (atomically: no other process gets it); None if none."""
        for name in self._ready():
            src = os.path.join(self.directory, name)
            dst = os.path.join(
                self._claimed, f"{name}~{_HOST}~{os.getpid()}~{_TOKEN}~{int(time.time() * 1000)}"
            )
            try:
                os.rename(src, dst)
            except FileNotFoundError:
                continue  # another process claimed it first
            except OSError as exc:
                _logger.warning("Opik spool: could not claim %s: %s", src, exc)
                continue
            try:
                items = self._read(dst)
            except (OSError, ValueError) as exc:
                self._quarantine(dst, name, str(exc))
                continue
            return Claim(self, dst, name, items)
        return None

    def _read(self, path: str) -> List[Item]:
        with open(path, "rb") as f:
            data = f.read()
        nl = data.find(b"\n")
        header = data[:nl].split(b" ") if nl > 0 else []
        if len(header) != 4 or header[0] != _MAGIC:
            raise ValueError("not an Opik spool file (bad header)")
        if header[1] != str(_VERSION).encode():
            raise ValueError(f"unsupported spool format version {header[1]!r}")
        count = int(header[2])
        rest = data[nl + 1 :]
        if hashlib.sha256(rest).hexdigest().encode() != header[3]:
            raise ValueError("checksum mismatch (truncated or damaged)")
        items: List[Item] = []
        pos = 0
        for _ in range(count):
            end = rest.index(b"\n", pos)
            meta = loads(rest[pos:end])
            n = int(meta["n"])
            body = rest[end + 1 : end + 1 + n]
            if len(body) != n or rest[end + 1 + n : end + 2 + n] != b"\n":
                raise ValueError("item body truncated")
            items.append(Item(str(meta["k"]), str(meta["i"]), body, str(meta.get("l", ""))))
            pos = end + 2 + n
        if pos != len(rest):
            raise ValueError("trailing data after the last item")
        return items

    def _quarantine(self, path: str, name: str, why: str) -> None:
        dest = os.path.join(self._corrupt, name)
        try:
            os.rename(path, dest)
        except OSError:
            dest = path
        if self.stats is not None:
            self.stats.add("spool_files_corrupt")
        _logger.warning(
            "Opik spool: %s is unreadable (%s); moved aside to %s and skipped. "
            "Inspect or delete it; the exporter goes on.", name, why, dest
        )

    # -- housekeeping ----------------------------------------------------------------
    def _entries(self, directory: str) -> Iterator[Tuple[str, int, float]]:
        try:
            with os.scandir(directory) as it:
                for e in it:
                    try:
                        if e.is_file():
                            st = e.stat()
                            yield e.name, st.st_size, st.st_mtime
                    except OSError:
                        continue
        except OSError:
            return

    def usage(self) -> int:
        """Bytes used by ready, claimed and corrupt files (the part bounded by ``max_bytes``)."""
        total = sum(size for name, size, _ in self._entries(self.directory) if name.endswith(SUFFIX))
        for d in (self._claimed, self._corrupt):
            total += sum(size for _, size, _ in self._entries(d))
        return total

    def _evict_corrupt(self) -> bool:
        """Delete the oldest corrupt file to make room; False if there is none."""
        entries = sorted(self._entries(self._corrupt), key=lambda e: e[2])
        for name, _, _ in entries:
            try:
                os.unlink(os.path.join(self._corrupt, name))
                _logger.warning("Opik spool full: deleted the corrupt file %s to make room", name)
                return True
            except OSError:
                continue
        return False

    def recover(self) -> int:
        """Put back batches claimed by processes that are gone; clean crashed writes. Returns how many."""
        now = time.time()
        back = 0
        for entry, _, _ in list(self._entries(self._claimed)):
            parts = entry.split("~")
            if len(parts) != 5:
                continue
            name, host, pid_s, token, ms_s = parts
            try:
                pid, claimed_at = int(pid_s), int(ms_s) / 1000.0
            except ValueError:
                continue
            if host == _HOST and pid == os.getpid() and token == _TOKEN:
                continue  # ours, in progress
            stale = now - claimed_at > self.stale_after
            if host == _HOST and (not _pid_alive(pid) or (pid == os.getpid() and token != _TOKEN)):
                stale = True
            if not stale:
                continue
            try:
                os.rename(os.path.join(self._claimed, entry), os.path.join(self.directory, name))
                back += 1
            except OSError:
                continue  # someone else recovered it first
        for entry, _, mtime in list(self._entries(self._tmp)):
            if now - mtime > TMP_STALE_SECONDS:
                try:
                    os.unlink(os.path.join(self._tmp, entry))
                except OSError:
                    pass
        if back:
            _logger.info("Opik spool: %d batches left by an earlier process will be re-sent", back)
        return back

    def _locked(self) -> "_DirLock":
        return _DirLock(self)


class _DirLock:
    """In-process lock plus an advisory ``flock`` on ``<dir>/.lock`` so the size bound holds across processes."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.fd: Optional[int] = None

    def __enter__(self) -> "_DirLock":
        self.spool._lock.acquire()
        if fcntl is not None:
            try:
                self.fd = os.open(os.path.join(self.spool.directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except OSError as exc:
                if self.fd is not None:
                    os.close(self.fd)
                    self.fd = None
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    _logger.debug("Opik spool: no directory lock (%s); size bound is per process", exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None
        self.spool._lock.release()


def _reset_lock(ref: "weakref.ref[Spool]") -> None:
    spool = ref()
    if spool is not None:
        spool._lock = threading.Lock()
