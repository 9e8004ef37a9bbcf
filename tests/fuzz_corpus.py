"""A seeded corpus of hostile image files for the readers' fuzz test (tests/test_fuzz.py).

`make_corpus(folder)` writes at least 200 files and returns {file name: what a reader must do}:
- "good": a readable colour image (odd modes, sizes, extensions and EXIF included): colorized;
- "bad": no image can be read from it, or it is over the pixel limit the test sets (LIMIT_MEGAPIXELS):
  named with its reason and skipped;
- "either": damaged (truncated, bytes flipped), which a decoder may still read in part: done or
  named, never a crash.
Bombs are small files whose headers claim huge images: a real 12000x12000 PNG of zeros (zlib
compresses it to about 150 kB), and PNG, JPEG, GIF and WebP headers rewritten to claim up to
65535x65535.
"""
import io
import struct
import zlib

import numpy as np
from PIL import Image

LIMIT_MEGAPIXELS = 5  # the test's --max-megapixels: the bombs and the 1x60000 strip are over it
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "gif": "GIF"}
# The readers list .jpg .jpeg .png .bmp .webp (data/image_files.py), and sniff the content: GIF
# content goes under a listed name.
LISTED = {"gif": "png"}


def photo(rng, height=30, width=40):
    """Smooth colours plus noise: a small colour photo."""
    yy, xx = np.mgrid[:height, :width] / max(height, width)
    smooth = np.stack([xx, yy, 1 - xx * yy], axis=-1) * 200 + 20
    return Image.fromarray(np.clip(smooth + rng.normal(0, 15, (height, width, 3)), 0, 255).astype(np.uint8))


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width, height):
    """A valid PNG of width x height black grey pixels, deflated a row at a time."""
    compressor, row, parts = zlib.compressobj(9), bytes(width + 1), []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(parts))
            + png_chunk(b"IEND", b""))


def claiming(data, fmt, width, height):
    """An encoded image whose header is rewritten to claim width x height (pixel data unchanged)."""
    data = bytearray(data)
    if fmt == "PNG":  # IHDR at byte 8: length, type, width, height, ...; its CRC follows the data
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    elif fmt == "JPEG":  # the frame header (SOF0 / SOF2): marker, length, precision, height, width
        at = next(i for i in range(2, len(data) - 9) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
        data[at + 5:at + 9] = struct.pack(">HH", height, width)
    elif fmt == "GIF":  # the logical screen, then the first image descriptor
        data[6:10] = struct.pack("<HH", width, height)
        at = data.index(b"\x2c", 13)
        data[at + 5:at + 9] = struct.pack("<HH", width, height)
    elif fmt == "WEBP":  # lossy VP8: after the 3-byte frame tag and the start code 9d 01 2a
        at = data.index(b"\x9d\x01\x2a") + 3
        data[at:at + 4] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    return bytes(data)


def make_corpus(folder, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    manifest = {}

    def write(name, data, kind):
        (folder / name).write_bytes(data)
        manifest[name] = kind

    base = {ext: encoded(photo(rng), fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
            for ext, fmt in FORMATS.items()}
    def name(stem, key):
        return f"{stem}_{key}.{LISTED.get(key, key)}"

    for key, data in base.items():  # the pristine files
        for i in range(4):
            write(name(f"good_{i}", key), encoded(photo(np.random.default_rng([seed, i])), FORMATS[key]) if i else data,
                  "good")
    for i in range(75):  # truncated at a random offset
        key = list(base)[i % len(base)]
        data = base[key]
        write(name(f"truncated_{i:02d}", key), data[:int(rng.integers(1, len(data)))], "either")
    for i in range(75):  # a few bytes flipped anywhere
        key = list(base)[i % len(base)]
        data = bytearray(base[key])
        for at in rng.integers(0, len(data), int(rng.integers(1, 9))):
            data[at] ^= int(rng.integers(1, 256))
        write(name(f"flipped_{i:02d}", key), bytes(data), "either")
    for i, (key, other) in enumerate([("png", "jpg"), ("jpg", "png"), ("webp", "png"), ("bmp", "jpg"),
                                      ("gif", "webp"), ("png", "bmp")]):  # the name says another format
        write(f"renamed_{i}.{other}", base[key], "good")
    write("text.png", b"this is not an image\n" * 10, "bad")
    write("html.jpg", b"<!doctype html><title>x</title>", "bad")
    write("zeros.webp", bytes(4096), "bad")
    for ext in ("png", "jpg", "webp"):
        write(f"empty.{ext}", b"", "bad")
    write("one_pixel.png", encoded(Image.new("RGB", (1, 1), (200, 40, 10)), "PNG"), "good")
    write("one_pixel.jpg", encoded(Image.new("RGB", (1, 1), (200, 40, 10)), "JPEG"), "good")
    write("strip_1x60000.png", encoded(Image.new("RGB", (60000, 1), (10, 90, 200)), "PNG"), "bad")
    write("strip_60000x1.png", encoded(Image.new("RGB", (1, 60000), (10, 90, 200)), "PNG"), "bad")
    write("cmyk.jpg", encoded(photo(rng).convert("CMYK"), "JPEG"), "good")
    grey16 = Image.fromarray(np.asarray(photo(rng).convert("L"), np.uint16) * 257)  # mode I;16
    write("grey_16bit.png", encoded(grey16, "PNG"), "either")  # grey: training drops it, colorize.py does it
    palette = photo(rng).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    write("palette_transparent.png", encoded(palette, "PNG", transparency=0), "good")
    write(name("palette_transparent", "gif"), encoded(palette, "GIF", transparency=0), "good")
    rgba = photo(rng).convert("RGBA")
    rgba.putalpha(128)
    write("rgba.png", encoded(rgba, "PNG"), "good")
    frames = [photo(np.random.default_rng([seed, 100 + i])) for i in range(3)]
    write(name("animated", "gif"), encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100),
          "good")
    write("animated.webp", encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100), "good")
    for orientation in (0, 9, 255, 65535):  # EXIF orientations that mean nothing
        exif = Image.Exif()
        exif[0x0112] = orientation
        write(f"exif_orientation_{orientation}.jpg", encoded(photo(rng), "JPEG", exif=exif), "good")
    exif = Image.Exif()
    exif[0x0112] = 6  # a real one: turned a quarter
    write("exif_rotated.jpg", encoded(photo(rng), "JPEG", exif=exif), "good")
    write("bomb_12000x12000.png", png_bomb(12000, 12000), "bad")
    for key in ("png", "jpg", "gif", "webp"):
        for width, height in ((65535, 65535), (16000, 16000)):
            write(name(f"bomb_header_{width}x{height}", key), claiming(base[key], FORMATS[key], width, height), "bad")
    return manifest
