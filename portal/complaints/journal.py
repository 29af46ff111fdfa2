"""The complaint journal: the one write a receipt waits for on the disk.

Redis runs with ``appendfsync everysec``, so that showing a landing page, a form or a
status page never waits for an fsync. A power cut can then take the last second or two
of Redis's writes with it, so before the receipt is shown each complaint (already
sealed, the same payload as the spool) is also appended to an fsync'd file of this
machine, ``<VAR_DIR>/journal/<minute>.jsonl``. Nothing in it is personal in clear.

Redis's ``run_id`` changes whenever the server restarts or a replica takes over, which
is exactly when its last writes may be gone. :meth:`Journal.maintain` (run after a
complaint at most every ``CHECK_EVERY`` seconds, and on each delivery-worker turn that
replays the spool) compares it with the ``run_id`` it saw last: on a change every
journal file is written to Redis again (the store script skips a record that exists),
otherwise files older than ``KEEP_SECONDS`` are removed, since a Redis that kept running
has fsynced them many times over.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

from ..spool import append_durably, fsync_dir

log = logging.getLogger(__name__)
KEEP_SECONDS = 120   # a file is removed once its minute is this old and Redis did not restart
CHECK_EVERY = 10.0   # seconds between maintenance runs of one process
RUN_ID_FILE = "redis-run-id"


class Journal:
    """The journal directory of one machine, shared by its processes."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self._next_check = 0.0

    def append(self, payload: dict, *, now: float | None = None) -> None:
        """Append one complaint and fsync it before returning."""
        now = time.time() if now is None else now
        path = self.directory / f"{int(now // 60) * 60}.jsonl"
        line = json.dumps({"at": now, "data": payload}, separators=(",", ":")) + "\n"
        created = not path.exists()
        if created:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        append_durably(path, line)
        if created:  # the file's name must survive the power cut too
            fsync_dir(self.directory)

    def files(self) -> list[Path]:
        """The journal's files, oldest first."""
        try:
            return sorted(self.directory.glob("*.jsonl"), key=lambda p: p.name)
        except OSError:
            return []

    def due(self, now: float | None = None) -> bool:
        """True when this process should run :meth:`maintain` (a clock check, no I/O)."""
        now = time.monotonic() if now is None else now
        if now < self._next_check:
            return False
        self._next_check = now + CHECK_EVERY
        return True

    def maintain(self, run_id: str, write: Callable[[dict], object], *, now: float | None = None) -> int:
        """Rewrite every complaint into a restarted Redis, else drop old files; return records rewritten."""
        now = time.time() if now is None else now
        files = self.files()
        id_path = self.directory / RUN_ID_FILE
        try:
            seen = id_path.read_text().strip()
        except OSError:
            seen = ""
        rewritten = 0
        if seen != run_id:
            for path in files:
                rewritten += self._rewrite(path, write)
            if files and seen:
                log.warning("journal: Redis restarted (new run_id); rewrote %d complaint(s) from %d file(s)",
                            rewritten, len(files))
            self._remember(run_id)
            return rewritten
        for path in files:
            try:
                minute = int(path.stem)
            except ValueError:
                continue
            if minute + 60 + KEEP_SECONDS < now:
                path.unlink(missing_ok=True)
        return 0

    def _remember(self, run_id: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.directory / f".{RUN_ID_FILE}.{os.getpid()}"
        temporary.write_text(run_id)
        os.replace(temporary, self.directory / RUN_ID_FILE)

    @staticmethod
    def _rewrite(path: Path, write: Callable[[dict], object]) -> int:
        done = 0
        try:
            handle = path.open("rb")
        except OSError:
            return 0  # removed by another process meanwhile
        with handle:
            for raw in handle:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a torn last line: its complaint got no receipt
                write(record["data"])
                done += 1
        return done
