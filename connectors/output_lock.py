"""One run at a time per output folder: ``OUTPUT/.tierlake.lock``.

A run takes an exclusive ``flock`` on the lock file and writes who holds it (pid, host, command,
start time). A second run into the same folder finds the lock taken and stops with a message
naming the first. The kernel releases a ``flock`` when its process ends, however it ends (kill -9
included), so the lock file a killed run leaves behind is stale by construction and the next run
takes it over — no pid guessing. ``flock`` is local to one machine: on a network file system
shared by several hosts, run one writer per output folder (docs/operations.md).
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import socket
import sys
import time

from connectors.filesystem import InputError, is_s3

LOCK_NAME = ".tierlake.lock"


class OutputLocked(InputError):
    """Another run is writing into the same output folder."""


class OutputLock:
    """``with OutputLock(root, "tierlake dedup"):`` — held for the block; s3:// roots are not
    locked here (a run stages them in a private local folder)."""

    def __init__(self, root: str, command: str = ""):
        self.root, self.command = root, command or " ".join(os.path.basename(a) for a in sys.argv[:2])
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> OutputLock:
        if is_s3(self.root):
            return self
        self.created = not os.path.exists(self.root)
        os.makedirs(self.root, exist_ok=True)
        path = os.path.join(self.root, LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputLocked(f"{self.root} is being written by another run ({holder}); wait for it to finish or write to another folder") from None
        stale = _read_holder(fd)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": self.command,
                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            ).encode(),
            0,
        )
        self.fd, self.took_over = fd, stale if stale != "unknown holder" else None
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # released: the file stays (removing it would race a waiting run)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
            if self.created and os.listdir(self.root) == [LOCK_NAME]:  # a run that wrote nothing leaves nothing
                try:
                    os.remove(os.path.join(self.root, LOCK_NAME))
                    os.rmdir(self.root)
                except OSError:
                    pass


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return "unknown holder"
    if not info:
        return "unknown holder"
    return f"{info.get('command') or 'tierlake'}, pid {info.get('pid')} on {info.get('host')}, started {info.get('started_at')}"


def holds_output_lock(parameter: str = "output", command: str = ""):
    """Decorator: the call holds :class:`OutputLock` on its ``parameter`` folder."""

    def wrap(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args, **kwargs):
            root = signature.bind(*args, **kwargs).arguments[parameter]
            with OutputLock(root, command):
                return fn(*args, **kwargs)

        return locked

    return wrap
