"""Each write process of `write-api --workers N` holds one slot, 0 to N-1, for its life:
an exclusive flock on the slot's file in a directory the supervisor made for this run.
The kernel releases the lock when the process dies, so a restarted process takes the
slot back. Beside each slot's lock is the Unix socket its holder listens on."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

DIRECTORY_ENV = "ORDERFLOW_WRITE_ROUTING_DIR"  # set by the supervisor for its workers


@dataclass(frozen=True)
class Slot:
    index: int
    count: int
    directory: Path
    _lock: int  # the flock'ed file descriptor, open for the process's life

    def socket(self, index: int) -> Path:
        return socket_path(self.directory, index)


def socket_path(directory: Path, index: int) -> Path:
    return directory / f"slot-{index}.sock"


def claim_slot(directory: Path, count: int) -> Slot | None:
    """The first free slot of `count`, held until this process exits; None when every
    slot is held (a process too many routes nothing to itself, and stays correct)."""
    for index in range(count):
        fd = os.open(directory / f"slot-{index}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.set_inheritable(fd, False)
        return Slot(index, count, directory, fd)
    return None
