"""One training process per run folder.

An exclusive `flock` on <run>/.lock, held for the life of the process: the kernel releases it when
the process ends however it ends (kill -9 included), so a crashed run never blocks the next one.
The file holds the owner's pid and host, for the message a second process gets. (flock is local:
on a network file system shared by several machines it may not exclude a process on another one.)
"""
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock (TensorFlow's Windows builds are CPU-only anyway)
    fcntl = None

LOCK_NAME = ".lock"


class RunInUse(Exception):
    pass


class RunLock:
    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self.file = None

    def acquire(self):
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise RunInUse(f"{self.path.parent} is in use by another training ({owner}): wait for it to "
                           f"finish or stop it, or use another --checkpoints-path") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        self.file = f
        return self

    def release(self):
        if self.file is not None:
            self.file.close()  # closing releases the flock; the file stays (removing it would race)
            self.file = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
