"""Writing images: a fast PNG encoder and atomic saves in the formats colorize.py offers."""
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from util import atomic

class FileError(Exception):
    """One input that cannot be colorized; the others carry on."""


FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "tif": "TIFF"}
SAVE_OPTIONS = {"PNG": {"compress_level": 1}, "JPEG": {"quality": 95}, "WEBP": {"quality": 95}}


def png_bytes(pixels):
    """An 8-bit RGB (H, W, 3) or RGBA (H, W, 4) array as a PNG file's bytes, deflated on all cores.

    Pillow spends most of a big PNG's time choosing a filter per row, on one core: 1.3 s for a
    12-megapixel photo even at zlib level 1.  Here every row takes PNG's "Sub" filter (the
    difference to the pixel on its left, as small a file as Pillow's choice on photos), computed
    at once by numpy, and the rows are deflated in one piece per core, joined into the single
    zlib stream PNG wants (each piece ends on a sync flush; the checksum covers them all).
    """
    height, width, channels = pixels.shape
    rows = np.ascontiguousarray(pixels, np.uint8).reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), np.uint8)
    filtered[:, 0] = 1  # filter type Sub
    filtered[:, 1:] = rows
    filtered[:, 1 + channels:] -= rows[:, :-channels]  # uint8 arithmetic wraps modulo 256, as PNG's
    data = filtered.reshape(-1).data  # flat bytes: slices below cut at byte offsets
    pieces = max(1, min(os.cpu_count() or 1, len(data) >> 20))
    cuts = [len(data) * i // pieces for i in range(pieces + 1)]

    def deflate(i):
        compressor = zlib.compressobj(1, zlib.DEFLATED, -15)  # level 1, raw deflate
        end = zlib.Z_FINISH if i == pieces - 1 else zlib.Z_SYNC_FLUSH
        return compressor.compress(data[cuts[i]:cuts[i + 1]]) + compressor.flush(end)

    with ThreadPoolExecutor(pieces) as pool:  # zlib releases the GIL
        stream = b"\x78\x01" + b"".join(pool.map(deflate, range(pieces))) + struct.pack(">I", zlib.adler32(data))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, {3: 2, 4: 6}[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def save(image, path, fmt):
    """Written to a hidden temporary name and renamed, so an interrupted run leaves no half file."""
    if fmt == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")  # JPEG has no alpha channel
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        if fmt == "PNG" and image.mode in ("RGB", "RGBA"):
            tmp.write_bytes(png_bytes(np.asarray(image)))
        else:
            image.save(tmp, fmt, **SAVE_OPTIONS.get(fmt, {}))

    try:
        atomic.atomic_write(path, write, mode=None)
    except (OSError, ValueError) as e:
        raise FileError(f"cannot write {path} ({e})") from None
