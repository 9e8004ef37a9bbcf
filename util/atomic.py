"""The one way this project replaces a file: write a hidden temporary beside it, flush it to disk,
rename it over the target. A crash leaves the old file or the new one, never half of one; the
temporary of an interrupted write is removed on any error, and by `remove_temporaries` after a
kill -9. The file gets the permissions of any new file (0666 less the umask), not 0600."""
import os
import re
import shutil
from pathlib import Path

# .<target stem>.<pid>.tmp<target suffix>: the suffix kept, for writers that insist on it (Keras)
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp(\.[^.]+)?$")


def temporary_name(path):
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def replace_folder(staged, path):
    """Puts the finished folder `staged` (a temporary_name beside `path`) in place of `path`: the
    old folder is renamed to a temporary name first (POSIX renames no folder over another that
    holds files) and removed after, so only the instant between the two renames has neither."""
    staged, path = Path(staged), Path(path)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.tmp.old")
        os.rename(path, old)
    os.rename(staged, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write, mode="wb"):
    """Calls write(f) on a new temporary file opened with `mode`, then renames it to `path`.
    `write` may also take a path: pass mode=None and it gets the temporary's path instead."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        if mode is None:
            write(tmp)
        else:
            with open(tmp, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"})) as f:
                write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def write_text(path, text):
    atomic_write(path, lambda f: f.write(text), "w")


def write_bytes(path, data):
    atomic_write(path, lambda f: f.write(data), "wb")


def remove_temporaries(folder, orphans_only=False):
    """Deletes the temporaries interrupted writes left in `folder` (only call it where no other
    process writes: a run folder under its lock; or with orphans_only, those whose writer, named
    by the pid in the name, is no longer running on this machine); returns their names."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    gone = []
    for p in folder.iterdir():
        match = _TEMPORARY.match(p.name)
        if match and not p.is_symlink() and not (orphans_only and _running(int(match.group(1)))):
            if p.is_dir():  # a folder staged whole (export.py's saved_model)
                shutil.rmtree(p, ignore_errors=True)
            elif p.is_file():
                p.unlink(missing_ok=True)
            else:
                continue
            gone.append(p.name)
    return sorted(gone)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


class NotWritable(Exception):
    pass


def writable_folder(folder, what="output folder"):
    """Makes `folder` (and its parents) and checks a file can be written in it, before any work;
    raises NotWritable with one line naming the problem."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotWritable(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(folder / "write-test")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise NotWritable(f"cannot write in {what} {folder}: {e.strerror or e}") from None
    return folder
