"""Safe writes for every store nrrcast keeps: never touch what nrrcast did not write,
survive a kill at any instant, and let one writer at a time in.

The rules, used by every writer (quarantine, feature table, scores, simulator, report,
thresholds):

- **Ownership.** A directory nrrcast creates holds a marker file (``.nrrcast``, naming its
  kind). nrrcast writes into a directory only if it is new, empty, marked with the same
  kind, or holds nothing but the writer's own layout (stores written before markers
  existed); it refuses a directory that overlaps a source. Before a whole directory is
  replaced, any entry outside the writer's layout stops the write.
- **Crash-safe directory swaps.** A new version is written beside the target as
  ``.<name>.tmp-<id>``; the swap renames the target to ``.<name>.old-<id>``, the new one
  into place, then removes the old one. `recover` finishes or undoes a swap that a kill
  interrupted, deterministically: the new version wins once it is committed (by default:
  once the swap has started, i.e. ``.old-<id>`` exists), else the old one stays.
- **Atomic files.** A file is written to a unique sibling and renamed into place.
- **One writer per store.** `StoreLock` is an ``flock`` on a lock file that records the
  holder (pid, host, time); a lock of a dead process is released by the kernel and taken
  over; a second writer waits up to a timeout, then stops with a message naming the store
  and the holder.
- **Clean-up never hides the error.** `cleanup` runs a clean-up step and only logs its
  failure, so the original exception is the one the user sees.
- New files and directories get the process umask's mode (like ``open``/``mkdir``), not
  ``tempfile``'s private 0600/0700.

Tests pause a writer at a named point (``NRRCAST_TEST_PAUSE_AT=<point>``, see `pause_point`)
and kill it there to prove that every store stays readable and a rerun completes.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from features.errors import InputError, LockHeldError, UnsafePathError

log = logging.getLogger("nrrcast.storage")

T = TypeVar("T")

MARKER = ".nrrcast"
PAUSE_ENV = "NRRCAST_TEST_PAUSE_AT"
PAUSE_FILE_ENV = "NRRCAST_TEST_PAUSE_FILE"
DEFAULT_LOCK_TIMEOUT_S = 60.0


class NotWritableError(InputError, PermissionError):
    """An output location that cannot be written (read-only, not a directory). Exit 2."""


__all__ = [
    "MARKER",
    "LockHeldError",
    "NotWritableError",
    "StoreLock",
    "UnsafePathError",
    "atomic_write",
    "check_writable",
    "claim_dir",
    "cleanup",
    "ensure_outside",
    "new_id",
    "pause_point",
    "process_alive",
    "read_retrying",
    "readable_dir",
    "recover",
    "staging_dir",
    "swap_dir",
]


# --------------------------------------------------------------------------- test hook


def pause_point(name: str) -> None:
    """Stop here for ever when the test hook names this point (a kill test's target).

    With ``NRRCAST_TEST_PAUSE_AT`` equal to `name` (or a comma list holding it), the process
    writes `name` to ``NRRCAST_TEST_PAUSE_FILE`` (if set), then sleeps until killed. Unset,
    this costs one dictionary look-up.

    Parameters
    ----------
    name : str
        The point's name, e.g. ``"dir.swap"``; what the test sets to stop here.
    """
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted or name not in wanted.split(","):
        return
    signal_file = os.environ.get(PAUSE_FILE_ENV)
    if signal_file:
        Path(signal_file).write_text(f"{name} {os.getpid()}\n")
    while True:  # pragma: no cover - ends with the kill
        time.sleep(3600)


# --------------------------------------------------------------------------- clean-up


def cleanup(step: Callable[[], object], what: str) -> None:
    """Run a clean-up step; log (never raise) its failure so the original error stays the
    one the user sees. Use inside ``except``/``finally`` blocks.

    Parameters
    ----------
    step : callable
        The clean-up, called without arguments; its result is ignored.
    what : str
        What it does, for the warning logged when it fails.
    """
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - clean-up must not mask the real error
        log.warning("clean-up failed (%s): %s", what, exc)


# --------------------------------------------------------------------------- ownership


def _marker_kind(path: Path) -> str | None:
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None if not (path / MARKER).exists() else "?"
    return str(data.get("kind", "?")) if isinstance(data, dict) else "?"


def _write_marker(path: Path, kind: str) -> None:
    atomic_write(path / MARKER, json.dumps({"written_by": "nrrcast", "kind": kind}) + "\n")


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _foreign(path: Path, layout: Iterable[str]) -> list[str]:
    """Entries of `path` that are neither the marker, our leftovers nor the writer's layout."""
    ours = (re.escape(MARKER), r"\..*\.(tmp|old)-[0-9a-f-]+", r"\..*\.lock")
    patterns = [re.compile(p) for p in (*layout, *ours)]
    return sorted(
        e.name + ("/" if e.is_dir() else "")
        for e in path.iterdir()
        if not any(p.fullmatch(e.name) for p in patterns)
    )


def claim_dir(
    path: str | Path,
    kind: str,
    *,
    layout: Iterable[str] = (),
    keep_clear_of: Iterable[str | Path | None] = (),
    adopt: Callable[[Path], bool] | None = None,
    create: bool = True,
) -> Path:
    """Make sure nrrcast may write into `path` as a store of `kind`, and mark it.

    Parameters
    ----------
    path : str or Path
        The output directory.
    kind : str
        What it holds ("quarantine", "features", "scores", "world", ...); a directory
        marked as another kind is refused (a feature table never lands on the scores).
    layout : iterable of str
        Regular expressions for the entry names the writer itself creates; an unmarked
        directory holding only such entries is adopted (written by nrrcast before markers
        existed).
    keep_clear_of : iterable of str, Path or None
        Sources that must not overlap `path` (neither may contain the other).
    adopt : callable, optional
        For an unmarked, non-empty directory that holds only `layout` entries: proof that
        nrrcast wrote it (e.g. its own database file is there); when given and it says
        no, such a directory is refused.
    create : bool
        Create the directory (and its marker) when it is missing; False only checks.

    Returns
    -------
    Path
        The resolved directory.

    Raises
    ------
    UnsafePathError
        When `path` overlaps a source, is a file, is marked as another kind or holds
        files nrrcast did not write.
    NotWritableError
        When the directory or its marker cannot be created.
    """
    target = ensure_outside(path, keep_clear_of)
    if target.exists() and not target.is_dir():
        raise UnsafePathError(f"{target} is a file, not a directory", hint="choose a directory")
    if not target.exists():
        if create:
            _mkdirs(target)
            _write_marker(target, kind)
        return target
    found = _marker_kind(target)
    if found is not None and found != kind:
        raise UnsafePathError(
            f"{target} holds nrrcast {found} output, not {kind}",
            hint=f"choose another directory for the {kind}",
        )
    foreign = _foreign(target, layout)
    unproven = found is None and not foreign and adopt is not None and any(target.iterdir())
    if unproven and not adopt(target):  # type: ignore[misc]
        foreign = sorted(e.name for e in target.iterdir())
    if found is None and foreign:
        raise UnsafePathError(
            f"{target} is not empty and was not written by nrrcast (no {MARKER} marker; holds "
            f"{_listing(foreign)}): refusing to write there",
            hint=f"choose a new or empty directory for the {kind}",
        )
    if found is None and create:
        try:
            _write_marker(target, kind)
        except OSError as exc:
            raise NotWritableError(
                f"{kind} directory {target} is not writable ({exc.strerror or exc})",
                hint="fix its permissions or choose another directory",
            ) from None
    return target


def ensure_outside(path: str | Path, sources: Iterable[str | Path | None]) -> Path:
    """Refuse an output location that overlaps a source (either contains the other).

    Parameters
    ----------
    path : str or Path
        The output location.
    sources : iterable of str, Path or None
        The inputs it must keep clear of; None entries (an unused source) are skipped.

    Returns
    -------
    Path
        `path`, user-expanded and resolved.

    Raises
    ------
    UnsafePathError
        When `path` and a source are the same or one contains the other.
    """
    target = _resolved(path)
    for src in sources:
        if src is None:
            continue
        src_path = _resolved(src)
        if _overlaps(target, src_path):
            raise UnsafePathError(
                f"{target} overlaps the source {src_path}: nrrcast never writes into its input",
                hint="choose an output directory outside the source",
            )
    return target


def check_replaceable(path: Path, kind: str, layout: Iterable[str]) -> None:
    """Before a whole directory is replaced: refuse if it holds anything nrrcast did not
    write (e.g. a notes file someone put into the feature table's directory).

    Parameters
    ----------
    path : Path
        The directory about to be replaced; a missing one passes.
    kind : str
        What it holds ("features", "scores", ...), for the message.
    layout : iterable of str
        Regular expressions for the entry names the writer itself creates.

    Raises
    ------
    UnsafePathError
        Naming (up to three of) the foreign entries.
    """
    if not path.exists():
        return
    foreign = _foreign(path, layout)
    if foreign:
        raise UnsafePathError(
            f"{path} holds {_listing(foreign)}, which nrrcast did not write; replacing the "
            f"{kind} would delete it",
            hint="move those files elsewhere or choose another output directory",
        )


def _listing(names: list[str], keep: int = 3) -> str:
    shown = ", ".join(names[:keep])
    return shown + (f" and {len(names) - keep} more" if len(names) > keep else "")


def _mkdirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)  # mode 0o777 & ~umask, like any mkdir
    except OSError as exc:
        raise NotWritableError(
            f"cannot create {path}: not writable ({exc.strerror or exc})",
            hint="fix the permissions or choose another directory",
        ) from None


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Fail fast, before the expensive work, when `path` (a directory, created later if
    missing) cannot be written: one clear line instead of a traceback at the end of a run.

    The nearest existing ancestor is probed with a file created and removed at once; nothing
    is created for a missing `path`.

    Parameters
    ----------
    path : str or Path
        The output directory.
    what : str
        What goes there, for the message.

    Returns
    -------
    Path
        `path`, user-expanded and resolved.

    Raises
    ------
    NotWritableError
        When the nearest existing ancestor is a file or cannot be written.
    """
    target = _resolved(path)
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NotWritableError(f"{what} {target}: {existing} is a file, not a directory")
    probe = existing / f".nrrcast-probe-{new_id()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise NotWritableError(
            f"{what} {target} is not writable ({exc.strerror or exc})",
            hint="fix its permissions or choose another directory",
        ) from None
    os.close(fd)
    os.unlink(probe)
    return target


# --------------------------------------------------------------------------- files


def new_id() -> str:
    """A short unique id for one write (pid + random): names its staging and backup.

    Returns
    -------
    str
        ``<pid in hex>-<8 hex digits>``; `remove_stale_files` reads the pid back.
    """
    return f"{os.getpid():x}-{secrets.token_hex(4)}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: str | bytes, *, point: str | None = None) -> Path:
    """Write a file all-or-nothing: a unique sibling is written, synced and renamed into
    place, so a reader sees the old file or the new one, never half of one.

    Parameters
    ----------
    path : str or Path
        The file to write (replaced if it exists); its directory must exist.
    data : str or bytes
        The content; text is encoded as UTF-8.
    point : str, optional
        The pause point between write and rename (kill tests).

    Returns
    -------
    Path
        `path`.
    """
    path = Path(path)
    remove_stale_files(path.parent, path.name)
    tmp = path.with_name(f".{path.name}.tmp-{new_id()}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if point:
            pause_point(point)
        os.replace(tmp, path)
    except BaseException:
        cleanup(lambda: tmp.unlink(missing_ok=True), f"remove {tmp.name}")
        raise
    _fsync_dir(path.parent)
    return path


def remove_stale_files(directory: Path, name: str) -> None:
    """Remove ``.<name>.tmp-<id>`` files that a killed `atomic_write` left (only those of
    processes that no longer run: a live writer's file is its own).

    Parameters
    ----------
    directory : Path
        Where the file lives.
    name : str
        The file's name (not a pattern: glob characters in it are matched literally).
    """
    for left in directory.glob(f".{glob_escape(name)}.tmp-*"):
        m = re.fullmatch(r".*\.tmp-([0-9a-f]+)-[0-9a-f]+", left.name)
        if left.is_file() and m and not process_alive(int(m.group(1), 16)):
            cleanup(lambda left=left: left.unlink(missing_ok=True), f"remove {left.name}")


def glob_escape(name: str) -> str:
    """Escape glob characters so that a file name is matched literally by ``Path.glob``.

    Parameters
    ----------
    name : str
        A file name that may hold ``*``, ``?`` or ``[``.

    Returns
    -------
    str
        `name` with each of those characters wrapped in ``[...]``.

    Examples
    --------
    >>> glob_escape("scores[1]*.csv")
    'scores[[]1][*].csv'
    """
    return re.sub(r"([*?\[])", r"[\1]", name)


# --------------------------------------------------------------------------- directory swaps


def staging_dir(final: Path, write_id: str | None = None, kind: str | None = None) -> Path:
    """A fresh ``.<name>.tmp-<id>`` beside `final` (same file system, umask mode), with the
    marker of `kind` when given.

    Parameters
    ----------
    final : Path
        The directory the staged version will replace (see `swap_dir`); its parent is
        created if missing.
    write_id : str, optional
        The write's id (`new_id`); a new one by default.
    kind : str, optional
        The store kind whose marker the staged directory gets.

    Returns
    -------
    Path
        The new, empty (but for the marker) staging directory.
    """
    wid = write_id or new_id()
    tmp = final.with_name(f".{final.name}.tmp-{wid}")
    _mkdirs(final.parent)
    tmp.mkdir()
    if kind:
        _write_marker(tmp, kind)
    return tmp


def _write_id(leftover: Path, final: Path) -> tuple[str, str] | None:
    m = re.fullmatch(rf"\.{re.escape(final.name)}\.(tmp|old)-([0-9a-f-]+)", leftover.name)
    return (m.group(1), m.group(2)) if m else None


def _leftovers(final: Path) -> dict[str, dict[str, Path]]:
    found: dict[str, dict[str, Path]] = {}
    if not final.parent.is_dir():
        return found
    for entry in final.parent.glob(f".{glob_escape(final.name)}.*-*"):
        parsed = _write_id(entry, final)
        if parsed:
            found.setdefault(parsed[1], {})[parsed[0]] = entry
    return found


def fsync_tree(root: Path) -> None:
    """Flush every file under `root`, then `root` itself, to disk before a swap publishes it.

    Parameters
    ----------
    root : Path
        A staged directory.
    """
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(root)


def swap_dir(staged: Path, final: Path, *, point: str = "dir") -> None:
    """Replace `final` by the complete directory `staged` (written by `staging_dir`).

    Order: old -> ``.<name>.old-<id>``, staged -> final, remove old. A kill between any two
    steps is repaired by `recover`. On an error the previous version is put back and the
    original error is raised. Pause points ``<point>.staged``, ``<point>.swap`` (between the
    renames) and ``<point>.swapped`` (before the old version is removed).

    Parameters
    ----------
    staged : Path
        The complete new version, a ``.<name>.tmp-<id>`` from `staging_dir`.
    final : Path
        The directory it replaces (may be missing).
    point : str
        The prefix of the pause points (kill tests).
    """
    wid = staged.name.rsplit(".tmp-", 1)[1]
    fsync_tree(staged)
    pause_point(f"{point}.staged")
    old = final.with_name(f".{final.name}.old-{wid}")
    moved = False
    try:
        if final.exists():
            os.replace(final, old)
            moved = True
        pause_point(f"{point}.swap")
        os.replace(staged, final)
    except BaseException:
        if moved and not final.exists():
            cleanup(lambda: os.replace(old, final), f"restore {final.name}")
        raise
    _fsync_dir(final.parent)
    pause_point(f"{point}.swapped")
    if moved:
        cleanup(lambda: shutil.rmtree(old), f"remove {old.name}")


def recover(final: Path, committed: Callable[[str], bool] | None = None) -> list[str]:
    """Finish or undo swaps of `final` that a crash interrupted; call with the store's lock.

    Parameters
    ----------
    final : Path
        The directory a swap replaces.
    committed : callable, optional
        Tells whether the write of the given id was committed elsewhere (the scores'
        DuckDB transaction); by default a write counts as committed once its swap started
        (its ``.old-<id>`` exists), which is when its staging was complete.

    Returns
    -------
    list of str
        What was done, one line per leftover (also logged).

    Raises
    ------
    UnsafePathError
        When `final`, its replaced version and an unswapped staging all exist: nrrcast
        refuses to guess which one is right.
    """
    done: list[str] = []
    for wid, parts in sorted(_leftovers(final).items()):
        tmp, old = parts.get("tmp"), parts.get("old")
        is_committed = committed(wid) if committed is not None else old is not None
        if tmp is not None and is_committed:
            if final.exists():
                if old is None:
                    old = final.with_name(f".{final.name}.old-{wid}")
                    os.replace(final, old)
                else:  # cannot happen with swap_dir's order; keep both, refuse to guess
                    raise UnsafePathError(
                        f"{final}: both {final.name} and {old.name} exist beside an unswapped "
                        f"{tmp.name}; resolve by hand"
                    )
            os.replace(tmp, final)
            done.append(f"{final.name}: finished an interrupted swap (write {wid})")
            tmp = None
        if tmp is not None:
            shutil.rmtree(tmp)
            done.append(f"{final.name}: removed an unfinished write ({tmp.name})")
        if old is not None:
            if final.exists():
                shutil.rmtree(old)
                done.append(f"{final.name}: removed the replaced version ({old.name})")
            else:
                os.replace(old, final)
                done.append(f"{final.name}: restored the previous version (write {wid} undone)")
    for line in done:
        log.warning("recovered %s", line)
    return done


def readable_dir(final: Path) -> Path | None:
    """Where a reader finds the current version of `final` without waiting for a writer:
    `final`, else the previous version an interrupted swap left (None if neither exists).
    Repairs the leftovers first when no writer holds `lock_path`.

    Parameters
    ----------
    final : Path
        The store's directory.

    Returns
    -------
    Path or None
        The directory to read from, or None when there is no version at all.
    """
    if final.is_dir():
        return final
    parts = _leftovers(final)
    if not parts:
        return None
    try:
        with StoreLock(lock_path(final), what=str(final), timeout=0):
            recover(final)
    except (LockHeldError, OSError) as exc:  # a writer is busy, or a read-only reader
        log.info("%s: interrupted swap left as is for now (%s)", final, exc)
    if final.is_dir():
        return final
    olds = [p["old"] for _, p in sorted(parts.items()) if "old" in p and p["old"].is_dir()]
    return olds[-1] if olds else None


def read_retrying(read: Callable[[], T], attempts: int = 3) -> T:
    """Run a read again when a concurrent swap moved its files away mid-read (the second
    attempt finds the new version); other errors and the last failure propagate.

    Parameters
    ----------
    read : callable
        The read, called without arguments; retried only on ``FileNotFoundError``.
    attempts : int
        How many times it runs at most.

    Returns
    -------
    T
        What `read` returned.
    """
    for attempt in range(attempts):
        try:
            return read()
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def lock_path(final: Path) -> Path:
    """The lock file of a directory that is replaced as a whole: beside it, not inside.

    Parameters
    ----------
    final : Path
        The store's directory.

    Returns
    -------
    Path
        ``.<name>.lock`` in the same parent.
    """
    return final.with_name(f".{final.name}.lock")


# --------------------------------------------------------------------------- locks

_HELD: dict[str, tuple[int, int]] = {}  # lock file -> (fd, depth): re-entrant per process


class StoreLock:
    """One writer at a time per store: an exclusive ``flock`` on `path`.

    The holder's pid, host and start time are written into the file so that a waiting
    writer can name it. A lock of a process that died (even by ``kill -9``) is released by
    the kernel and taken over. Re-entrant within a process.

    Parameters
    ----------
    path : Path
        The lock file (created, with its parent, if missing).
    what : str
        The store, for messages.
    timeout : float
        Seconds to wait for another writer; 0 fails at once.
    hint : str
        What the user can do, shown with the error.

    Raises
    ------
    LockHeldError
        On entry, when another writer still holds the lock after `timeout`.
    """

    def __init__(
        self,
        path: Path,
        *,
        what: str,
        timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        hint: str = "wait for it to finish, then rerun",
    ):
        self.path = Path(path)
        self.what = what
        self.timeout = timeout
        self.hint = hint

    def __enter__(self) -> StoreLock:
        key = os.path.abspath(self.path)
        self._key = key
        if key in _HELD:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth + 1)
            return self
        _mkdirs(self.path.parent)
        deadline = time.monotonic() + max(self.timeout, 0)
        waited = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                got = self._try_lock(fd)
                # the releasing holder unlinks the file: a lock on a removed file is no lock
                if got and not _same_file(fd, self.path):
                    os.close(fd)
                    continue
            except BaseException:
                os.close(fd)
                raise
            if got:
                break
            holder = self._holder(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                raise LockHeldError(
                    f"{self.what} is being written by another nrrcast run ({holder}); "
                    f"waited {self.timeout:g} s",
                    hint=self.hint,
                )
            if not waited:
                log.info("waiting for %s (%s)", self.what, holder)
                waited = True
            time.sleep(0.1)
        previous = self._holder(fd)
        if previous != "unknown holder":  # the file outlived its holder: killed mid-write
            log.warning(
                "took over the lock of %s left by a run that died (%s)", self.what, previous
            )
        stamp = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(stamp) + "\n").encode(), 0)
        _HELD[key] = (fd, 1)
        return self

    @staticmethod
    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def __exit__(self, *exc: object) -> None:
        fd, depth = _HELD[self._key]
        if depth > 1:
            _HELD[self._key] = (fd, depth - 1)
            return
        del _HELD[self._key]
        # remove the file while still holding the lock (waiters re-check the inode), so a
        # clean run leaves nothing behind and a leftover file means a run that died
        cleanup(lambda: self.path.unlink(missing_ok=True), "remove the lock file")
        os.close(fd)  # releases the flock

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            data = {}
        if not data:
            return "unknown holder"
        return f"pid {data.get('pid')} on {data.get('host')} since {data.get('since')}"


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts).

    Parameters
    ----------
    pid : int
        The process id, e.g. read back from a staging file's name.

    Returns
    -------
    bool
        True when the process exists.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def locked(path: Path, what: str, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
    """``with locked(...)``: shorthand for `StoreLock`.

    Parameters
    ----------
    path : Path
        The lock file.
    what : str
        The store, for messages.
    timeout : float
        Seconds to wait for another writer; 0 fails at once.

    Yields
    ------
    None
        While the lock is held.

    Raises
    ------
    LockHeldError
        When another writer still holds the lock after `timeout`.
    """
    with StoreLock(path, what=what, timeout=timeout):
        yield
