"""Finding image files on disk and checking their headers, without decoding them."""
import logging
import os
import stat

from tqdm import tqdm

from util.runlock import LOCK_NAME

log = logging.getLogger(__name__)

# The one list of image file names: colorize.py reads all of them (through Pillow); training and
# test sets take those tf.io.decode_image decodes (not TIFF).
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_EXTENSIONS = tuple(e for e in PHOTO_EXTENSIONS if e not in (".tif", ".tiff"))

# BMP has only a 2-byte magic ("BM"); the DIB header size at offset 14 rules out text that starts so.
_BMP_DIB_SIZES = (12, 40, 52, 56, 64, 108, 124)


def sniff_image(path) -> str | None:
    """The image format named by the file's first 16 bytes: jpeg, png, bmp, webp, gif, or None."""
    try:  # non-blocking: a named pipe put there after the scan answers at once, and is refused
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            head = f.read(16)
    except OSError:
        return None
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"BM") and len(head) == 16 and head[14] in _BMP_DIB_SIZES and head[15] == 0:
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def is_image_name(name) -> bool:
    """True when the file name ends in one of IMAGE_EXTENSIONS, in any case."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def scan_images(root, recursive=True) -> tuple[list[str], dict[str, int]]:
    """Sorted absolute image paths under root, and the mtime (ns) of every folder listed.

    Each folder is stat'd before it is listed, so anything added or removed during or after the
    scan shows as a newer mtime (that is what makes the mtimes a valid cache key). Hidden files and
    folders (".git", macOS "._x.jpg" forks, ".ipynb_checkpoints") are not data and are skipped.
    Only what lies under root is data: a link to a folder elsewhere (the parent folder, say) and a
    train.py run folder (its sample grids) are skipped with a warning, and so is anything named
    like an image that is not a regular file (a named pipe would block its reader forever).
    """
    paths, mtimes, seen = [], {}, set()
    top = os.path.abspath(root)
    inside = os.path.join(os.path.realpath(top), "")
    stack = [top]
    while stack:
        folder = stack.pop()
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop, or the same folder linked twice
            continue
        seen.add((st.st_dev, st.st_ino))
        mtimes[folder] = st.st_mtime_ns
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()
                    is_file = not is_dir and entry.is_file()
                except OSError as e:  # a symlink loop, a dangling link on a flaky mount
                    log.warning("skipping %s: %s", entry.path, e.strerror or e)
                    continue
                if is_dir:
                    if recursive and _data_folder(entry.path, inside):
                        stack.append(entry.path)
                elif is_image_name(entry.name):
                    if is_file:
                        paths.append(entry.path)
                    else:
                        log.warning("skipping %s: not a regular file (a named pipe, device or socket)", entry.path)
    return sorted(paths), mtimes


def _data_folder(path, inside) -> bool:
    """Whether a subfolder holds data: it lies under the scanned folder once links are followed
    (`inside`: that folder's real path, ending in a separator) and is no run folder."""
    real = os.path.realpath(path)
    if not os.path.join(real, "").startswith(inside):
        log.warning("skipping %s: a link to %s, outside the dataset folder", path, real)
        return False
    if os.path.isfile(os.path.join(path, LOCK_NAME)):
        log.warning("skipping %s: a train.py run folder (its sample grids are not data)", path)
        return False
    return True


def find_images(root, recursive=True) -> list[str]:
    """Sorted absolute paths of the files under root named with IMAGE_EXTENSIONS, in any case."""
    return scan_images(root, recursive)[0]


def keep_readable(paths) -> tuple[list[str], int]:
    """The paths whose header is an image, and how many were dropped (one warning line each)."""
    good, n_bad = [], 0
    # Checking 1.8 M Places365 headers takes minutes on a cold disk: show progress for big lists.
    for path in tqdm(paths, desc="checking image headers", unit="file", disable=len(paths) < 20000):
        if sniff_image(path) is None:
            log.warning("skipping %s: %s", path, _why_not_image(path))
            n_bad += 1
        else:
            good.append(path)
    return good, n_bad


def _why_not_image(path) -> str:
    try:
        st = os.stat(path)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a named pipe, device or socket)"
    if st.st_size == 0:
        return "empty file"
    return "not a JPEG, PNG, BMP, WebP or GIF file (wrong header)"
