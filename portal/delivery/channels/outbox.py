"""A local outbox: one JSON file per complaint in a directory a person can read.

The embedded default (``make run`` sets ``PORTAL_OUTBOX_DIR=var/outbox``) has no
LAPOR! account, so delivered complaints land here instead of waiting forever::

    var/outbox/K7Q2-MX9D-R.json    the canonical payload (Anonim/Rahasia already applied)

Each file is written atomically (a temporary file in the same directory,
fsync, rename, fsync of the directory), so a reader never sees half a
complaint and a crash leaves either the whole file or none. The tracking
number names the file: a resend after a crash finds it and writes nothing.
Files are readable by the portal's user only (they may hold a name and a
contact) and are deleted with the rest of the personal data after
``PORTAL_RETENTION_DAYS`` (``erase``).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import ClassVar

from ...tracking import display, normalize
from .base import PermanentError, Receipt, Route, TemporaryError

_SAFE_NAME = re.compile(r"^[0-9A-Z-]{1,32}$")


class OutboxChannel:
    """Write each complaint as ``<directory>/<tracking>.json``."""

    kind: ClassVar[str] = "outbox"

    def __init__(self, *, name: str, directory: str, when: dict | None = None):
        if not directory:
            raise ValueError("an outbox channel needs a directory")
        self.name = name
        self.directory = Path(directory).resolve()
        self.route = Route.from_spec(when)

    def path(self, key: str) -> Path:
        """The file of the complaint with tracking number *key*."""
        canonical = normalize(key)
        # The key comes from a stream entry: never let it name a path outside the directory.
        name = display(canonical) if canonical else key
        if not _SAFE_NAME.match(name):
            raise PermanentError("not a tracking number")
        return self.directory / f"{name}.json"

    def send(self, payload: dict, *, key: str) -> Receipt:
        """Write *payload* once; a file already there is this complaint's earlier delivery."""
        target = self.path(key)
        if target.exists():
            return Receipt()
        data = json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")  # mode 600
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, target)
            except BaseException:
                with suppress(OSError):
                    os.unlink(temp)
                raise
            self._sync_directory()
        except OSError as error:
            # A full disk or a permission problem may be fixed by the operator: retried, then dead-lettered.
            raise TemporaryError(f"outbox {type(error).__name__}") from None
        return Receipt()

    def erase(self, key: str) -> None:
        """Delete the complaint's file (retention: its personal data goes with the record's)."""
        # A missing file (never delivered here, or erased already) is nothing to undo.
        with suppress(OSError, PermanentError):
            self.path(key).unlink()

    def _sync_directory(self) -> None:
        # The rename is durable only once the directory entry is on disk.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
