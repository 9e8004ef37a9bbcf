"""Colorize your own photos, at their full resolution, with a trained checkpoint.

    python colorize.py photos/ old/*.jpg scan.tif --checkpoint checkpoints/places365_gan --output coloured/

The network sees each photo at the scale it was trained at (shorter side --size, by default the
checkpoint's image size) and predicts a*b*; those colours are resized back to the full photo and
joined with the photo's own full-resolution lightness, so the output keeps every detail of the input.
"""
import argparse
import os
import struct
import sys
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps
from tqdm import tqdm

from data import color
from models import checkpoint as ckpt
from models.colorization import MIXED_PRECISION_HELP, load_for_inference
from models.generator import downsampling_factor
from util import atomic

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Pillow modes split_image reads; read_image turns any other (LAB, HSV, YCbCr, F...) into RGB.
MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I", "I;16", "I;16L", "I;16B", "I;16N")
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "tif": "TIFF"}
SAVE_OPTIONS = {"PNG": {"compress_level": 1}, "JPEG": {"quality": 95}, "WEBP": {"quality": 95}}
MAX_SIZE = 8192  # --size: the network's input at 8192 px already takes tens of gigabytes
STRIP_PIXELS = 1 << 20  # Lab conversions run on ~1-megapixel strips: bounded memory at 50 megapixels


class FileError(Exception):
    """One input that cannot be colorized; the others carry on."""


def parse_options(argv=None):
    p = argparse.ArgumentParser(description="Colorize photos at full resolution with a checkpoint.")
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    p.add_argument("--checkpoint", required=True, help="checkpoint .h5 or run folder (its latest)")
    p.add_argument("--output", required=True, help="output folder (mirrors the input folders)")
    p.add_argument("--size", type=int,
                   help="shorter side the network sees (default: the image size it was trained at)")
    p.add_argument("--format", default="png", choices=FORMATS, help="output format (default png)")
    p.add_argument("--side-by-side", action="store_true",
                   help="also write <name>_side_by_side: [input | colorized]")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction,
                   help=MIXED_PRECISION_HELP)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    opt = p.parse_args(argv)
    if opt.size is not None and not 0 < opt.size <= MAX_SIZE:
        p.error(f"--size must be between 1 and {MAX_SIZE} pixels")
    return opt


# ------------------------------------------------------------------------------------ one image
def split_image(image):
    """PIL image -> (pixels, full scale, alpha): pixels (H, W, 1) grey or (H, W, 3) RGB as uint8, or
    uint16 for 16-bit greys (full precision); alpha (H, W) uint8 or None."""
    alpha = None
    transparent = "transparency" in image.info and image.mode in ("L", "RGB", "P")
    if image.mode in ("RGBA", "LA", "PA") or transparent:
        image = image.convert("LA" if image.mode in ("L", "LA") else "RGBA")
        alpha = np.asarray(image.getchannel("A"))
    if image.mode.startswith("I"):  # I;16 PNG / TIFF, and 32-bit "I", which holds 16-bit data
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[..., None], 65535, alpha
    mode = "L" if image.mode in ("1", "L", "LA") else "RGB"
    image = image if image.mode == mode else image.convert(mode)  # P, CMYK, RGBA... -> RGB
    return np.asarray(image).reshape(image.height, image.width, -1), 255, alpha


# The per-pixel Lab maths runs on flat chunks of a few fixed sizes: XLA fuses it (3x faster than
# plain TF on this CPU, measured) and compiles each size once.
@tf.function(jit_compile=True, reduce_retracing=True)
def _lab_to_rgb8(L, ab):
    return color.to_uint8(color.lab_to_rgb(tf.concat([L, ab * color.AB_SCALE], axis=-1)))


def strips(height, width):
    rows = max(1, STRIP_PIXELS // width)
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def per_pixel(fn, *arrays):
    """fn over (rows, W, C) arrays, passed as (N, C) pixels zero-padded to a power of two (at most
    STRIP_PIXELS, bar a single row wider than that)."""
    rows, width = arrays[0].shape[:2]
    n = rows * width
    count = 1 << (n - 1).bit_length() if n <= STRIP_PIXELS else n
    flat = [np.pad(a.reshape(n, -1), ((0, count - n), (0, 0))) for a in arrays]
    return fn(*flat).numpy()[:n].reshape(rows, width, -1)


def lightness(pixels, scale):
    """Full-resolution L* in [0, 100], (H, W, 1) float32.

    L* depends on the luminance alone and the pixels are integers, so each channel is linearised
    by table lookup and the luminance is one weighted sum (a grey image needs one table: L* per
    level); strips run on all cores.
    """
    linear = color.srgb_to_linear_table(scale + 1)
    if pixels.shape[-1] == 1:
        return color.lightness_from_luminance(linear)[pixels]
    L = np.empty((*pixels.shape[:2], 1), np.float32)
    weights = color.Y_FROM_LINEAR_RGB.astype(np.float32)

    def strip(top, bottom):
        rgb = pixels[top:bottom]
        y = linear[rgb[..., 0]] * weights[0] + linear[rgb[..., 1]] * weights[1] + linear[rgb[..., 2]] * weights[2]
        L[top:bottom, :, 0] = color.lightness_from_luminance(y)

    on_all_cores(strip, strips(*L.shape[:2]))
    return L


def on_all_cores(fn, pieces):
    """fn(*piece) for every piece, on a thread per core (numpy and XLA release the GIL)."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for _ in pool.map(lambda piece: fn(*piece), pieces):
            pass  # re-raises a worker's exception


def predict_ab(model, L, size):
    """Normalised a*b* predicted with the shorter side resized to `size`: (h, w, 2)."""
    k = size / min(L.shape[:2])
    h, w = max(1, round(L.shape[0] * k)), max(1, round(L.shape[1] * k))
    # Antialiased bilinear, as the training pipeline resizes (data/pipeline.py).
    small = tf.image.resize(L, (h, w), antialias=True)[:, :, 0].numpy()
    factor = downsampling_factor(model.config["encoder"])
    padded = np.pad(small / color.L_SCALE - 1.0, ((0, -h % factor), (0, -w % factor)), mode="reflect")
    return model.predict_ab(padded[None, :, :, None])[0, :h, :w].numpy()


def bilinear_rows(image, height, top, bottom):
    """Rows top:bottom of `image` resized to `height` rows: bilinear with half-pixel centres, as
    tf.image.resize, without building the whole resized image."""
    y = np.clip((np.arange(top, bottom) + 0.5) * image.shape[0] / height - 0.5, 0, image.shape[0] - 1)
    y0 = np.floor(y).astype(int)
    t = (y - y0).astype(np.float32)[:, None, None]
    return image[y0] * (1 - t) + image[np.minimum(y0 + 1, image.shape[0] - 1)] * t


def join(L, ab):
    """Full-resolution L* with a*b* resized bilinearly to it -> uint8 RGB (H, W, 3)."""
    height, width = L.shape[:2]
    ab_wide = tf.image.resize(ab, (ab.shape[0], width)).numpy()  # columns once; rows strip by strip
    rgb = np.empty((height, width, 3), np.uint8)

    def strip(top, bottom):
        rgb[top:bottom] = per_pixel(_lab_to_rgb8, L[top:bottom], bilinear_rows(ab_wide, height, top, bottom))

    on_all_cores(strip, strips(height, width))
    return rgb


def colorize_image(model, image, size):
    """A PIL image of any mode -> the colorized PIL image, same size: RGB, or RGBA keeping its alpha."""
    pixels, scale, alpha = split_image(image)
    L = lightness(pixels, scale)
    colorized = Image.fromarray(join(L, predict_ab(model, L, size)))
    if alpha is not None:
        colorized.putalpha(Image.fromarray(alpha))
    return colorized


def side_by_side(image, colorized):
    pixels, scale, alpha = split_image(image)
    if scale != 255:
        pixels = ((pixels.astype(np.uint32) * 255 + scale // 2) // scale).astype(np.uint8)
    left = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    if alpha is not None:
        left.putalpha(Image.fromarray(alpha))
    canvas = Image.new(colorized.mode, (2 * image.width, image.height))
    canvas.paste(left.convert(colorized.mode), (0, 0))
    canvas.paste(colorized, (image.width, 0))
    return canvas


# ------------------------------------------------------------------------------------ the files
def pattern_files(pattern):
    """(root, image files) of a file, a folder (recursive) or a glob pattern; root is where the
    output names start (a pattern's folder before its first wildcard)."""
    path = Path(pattern)
    if path.is_file():
        return path.parent, [path]
    magic = next((i for i, part in enumerate(path.parts) if any(c in part for c in "*?[")), None)
    if path.is_dir() or magic is None:
        root, files = path, path.rglob("*")  # nothing when the folder does not exist
    else:
        root = Path(*path.parts[:magic])
        files = root.glob(str(Path(*path.parts[magic:])))
    # Hidden files and folders (".git", "._x.jpg" forks, our own temporary files) are not photos.
    return root, sorted(f for f in files if f.is_file() and f.suffix.lower() in EXTENSIONS
                        and not any(p.startswith(".") for p in f.relative_to(root).parts))


MANIFEST = ".colorized"  # in --output: the files colorize.py wrote there, one relative path a line


def written_before(output):
    """The files earlier runs wrote into `output` (resolved paths), from its manifest."""
    try:
        lines = (output / MANIFEST).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    return {(output / line).resolve() for line in lines if line.strip()}


def remember_outputs(output, paths):
    """Appends `paths` to the manifest of `output` (a line cut by a crash names no file: harmless)."""
    output = output.resolve()
    with open(output / MANIFEST, "a", encoding="utf-8") as f:
        f.write("".join(f"{p.resolve().relative_to(output).as_posix()}\n" for p in paths))


def find_inputs(patterns, output):
    """[(file, its output name relative to --output)], each file once, and the patterns that matched
    nothing. Files under --output are skipped unless --output is the very folder searched, so a
    second run does not colorize the first run's outputs; and files an earlier run wrote (its
    manifest) are never inputs, so an --output equal to an input folder gains nothing on a rerun."""
    found, misses, output = {}, [], output.resolve()
    ours = written_before(output)
    for pattern in patterns:
        root, files = pattern_files(pattern)
        if not Path(pattern).is_file() and root.resolve() != output:
            files = [f for f in files if not f.resolve().is_relative_to(output)]
        files = [f for f in files if f.resolve() not in ours]
        for f in files:
            found.setdefault(f.resolve(), (f, f.relative_to(root)))
        if not files:
            misses.append(pattern)
    return list(found.values()), misses


def destinations(inputs, output, ext):
    """An output path per input; inputs that would share one get their extension, then a number, added."""
    natural = [output / rel.with_suffix(ext) for _, rel in inputs]
    shared, taken, result = Counter(natural), set(), []
    for (_, rel), dest in zip(inputs, natural):
        if shared[dest] > 1:
            dest = dest.with_name(f"{rel.stem}_{rel.suffix[1:].lower()}{ext}")
        base, n = dest, 1
        while dest in taken:
            n += 1
            dest = base.with_name(f"{base.stem}_{n}{ext}")
        taken.add(dest)
        result.append(dest)
    return result


def read_image(path):
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # a loaded copy, turned the right way up
            return image if image.mode in MODES else image.convert("RGB")
    except Exception as e:  # Pillow raises many types on damaged files; all mean "cannot read"
        why = str(e).replace(f"'{path}'", "").replace(str(path), "").strip(" :")  # the line names it already
        raise FileError(f"cannot read it as an image ({type(e).__name__}{': ' + why if why else ''})") from None


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


def colorize_file(model, source, dest, opt, size, protected):
    """'colorized' or 'skipped' (every output exists already); FileError for a failure."""
    fmt, outputs = FORMATS[opt.format], [dest]
    if opt.side_by_side:
        outputs.append(dest.with_name(f"{dest.stem}_side_by_side{dest.suffix}"))
    if any(path.resolve() in protected for path in outputs):
        raise FileError("its output would overwrite an input image; choose another --output or --format")
    if not opt.overwrite and all(path.exists() for path in outputs):
        return "skipped"
    image = read_image(source)
    colorized = colorize_image(model, image, size)
    for path in outputs:
        if opt.overwrite or not path.exists():
            save(colorized if path == dest else side_by_side(image, colorized), path, fmt)
    remember_outputs(Path(opt.output), outputs)
    return "colorized"


def main(argv=None):
    opt = parse_options(argv)
    output = Path(opt.output)
    inputs, misses = find_inputs(opt.inputs, output)
    if not inputs:
        print(f"error: no images ({' '.join(EXTENSIONS)}) in {' '.join(opt.inputs)}", file=sys.stderr)
        return 1
    for pattern in misses:
        print(f"warning: no images match {pattern}", file=sys.stderr)
    try:
        model, _, _ = load_for_inference(opt.checkpoint, opt.mixed_precision)
    except ckpt.CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = opt.size or model.config["image_size"]
    print(f"Colorizing {len(inputs)} images into {output} (the network sees them at {size} pixels)")
    protected = {source.resolve() for source, _ in inputs}
    counts = Counter()
    jobs = list(zip([source for source, _ in inputs], destinations(inputs, output, f".{opt.format}")))
    for source, dest in tqdm(jobs, unit="image", disable=not opt.progress, dynamic_ncols=True):
        try:
            counts[colorize_file(model, source, dest, opt, size, protected)] += 1
        except FileError as e:
            counts["failed"] += 1
            tqdm.write(f"{source}: {e}", file=sys.stderr)
    print(f"{counts['colorized']} colorized, {counts['skipped']} skipped, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
