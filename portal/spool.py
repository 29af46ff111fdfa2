"""A local, fsync'd append-only spool for writes that Redis could not take.

When Redis is unreachable, a complaint (already encrypted) or an event is
appended as one JSON line to ``<VAR_DIR>/spool/current.jsonl`` and flushed to
disk before the resident sees the receipt. ``replay`` moves the file aside
atomically, feeds each line to a handler that writes it to Redis
idempotently, and deletes the file only when every line went through; a
crash mid-replay leaves the file to be replayed again, which is safe because
handlers skip what already exists.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


class Spool:
    """The spool directory of one machine, shared by its processes."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.current = self.directory / "current.jsonl"
        self.lock_path = self.directory / "replay.lock"

    def append(self, kind: str, payload: dict) -> None:
        """Append one record and fsync it before returning."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"kind": kind, "at": time.time(), "data": payload}, separators=(",", ":")) + "\n"
        append_durably(self.current, line)
        fsync_dir(self.directory)

    def pending(self) -> bool:
        """True when there is anything to replay (one stat call, cheap)."""
        try:
            return any(p.stat().st_size > 0 for p in self.directory.glob("*.jsonl"))
        except OSError:
            return False

    def stats(self, now: float | None = None) -> dict:
        """Bytes waiting and the age of the oldest record: stat calls and one line read, cheap."""
        now = time.time() if now is None else now
        try:
            files = [(path, path.stat().st_size) for path in self.directory.glob("*.jsonl")]
        except OSError:
            files = []
        files = [(path, size) for path, size in files if size > 0]
        oldest = None
        # Replay files (named by the time they were moved aside) hold older records than current.
        for path, _ in sorted(files, key=lambda item: (item[0] == self.current, item[0].name)):
            oldest = _first_record_time(path)
            if oldest is not None:
                break
        return {"bytes": sum(size for _, size in files),
                "oldest_age_seconds": None if oldest is None else round(max(0.0, now - oldest), 1)}

    def replay(self, handlers: dict[str, Callable[[dict], None]]) -> int:
        """Hand every spooled record to ``handlers[kind]``; return how many were replayed.

        A handler that raises stops the replay; the remaining records stay.
        Only one process replays at a time.
        """
        if not self.pending():
            return 0
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            self._rotate()
            done = 0
            for path in sorted(self.directory.glob("replay-*.jsonl")):
                done += self._replay_file(path, handlers)
            return done
        finally:
            os.close(lock_fd)

    def _rotate(self) -> None:
        if not self.current.exists() or self.current.stat().st_size == 0:
            return
        fd = os.open(self.current, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # wait for an append in progress
            os.rename(self.current, self.directory / f"replay-{time.time_ns()}.jsonl")
        finally:
            os.close(fd)
        fsync_dir(self.directory)

    def _replay_file(self, path: Path, handlers: dict[str, Callable[[dict], None]]) -> int:
        done = 0
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    record = json.loads(raw)
                except ValueError:
                    log.error("spool %s: skipping a torn line", path.name)  # a crash mid-write
                    continue
                handler = handlers.get(record.get("kind"))
                if handler is None:
                    log.error("spool %s: no handler for kind %r", path.name, record.get("kind"))
                    continue
                handler(record["data"])
                done += 1
        path.unlink()
        fsync_dir(self.directory)
        log.info("spool: replayed %d record(s) from %s", done, path.name)
        return done


def _first_record_time(path: Path) -> float | None:
    try:
        with path.open("rb") as handle:
            return float(json.loads(handle.readline())["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # gone (replayed meanwhile) or a torn line


def append_durably(path: Path, line: str) -> None:
    """Append *line* to *path* (mode 600) under an exclusive lock and fsync it: processes share the file."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """fsync a directory, so that a file created in it survives a power cut by name too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
