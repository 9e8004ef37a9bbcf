"""Finding image files on disk and checking their headers, without decoding them."""
import logging
import os

from tqdm import tqdm

log = logging.getLogger(__name__)

# The one list of image file names: colorize.py reads all of them (through Pillow); training and
# test sets take those tf.io.decode_image decodes (not TIFF).
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_EXTENSIONS = tuple(e for e in PHOTO_EXTENSIONS if e not in (".tif", ".tiff"))

# BMP has only a 2-byte magic ("BM"); the DIB header size at offset 14 rules out text that starts so.
_BMP_DIB_SIZES = (12, 40, 52, 56, 64, 108, 124)


def sniff_image(path) -> str | None:
    """The image format named by the file's first 16 bytes: jpeg, png, bmp, webp, gif, or None."""
    try:
        with open(path, "rb") as f:
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
    """
    paths, mtimes, seen = [], {}, set()
    stack = [os.path.abspath(root)]
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
                except OSError as e:  # a symlink loop, a dangling link on a flaky mount
                    log.warning("skipping %s: %s", entry.path, e.strerror or e)
                    continue
                if is_dir:
                    if recursive:
                        stack.append(entry.path)
                elif is_image_name(entry.name):
                    paths.append(entry.path)
    return sorted(paths), mtimes


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
        size = os.path.getsize(path)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if size == 0:
        return "empty file"
    return "not a JPEG, PNG, BMP, WebP or GIF file (wrong header)"
