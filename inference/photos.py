"""One photo at full resolution: read it (any mode), colorize it, put it beside its original.

The network sees each photo at the scale it was trained at (shorter side `size`) and predicts
a*b*; those colours are brought back to the full photo and joined with the photo's own
full-resolution lightness, so the output keeps every detail of the input. colorize.py (files and
folders) and serve.py (uploads) both use these functions.

Bringing the colours back ("guided", the default): a plain resize of the network's a*b* smears
each colour over several full-resolution pixels either side of an edge. Instead, in every small
window of the network's scale, a*b* is fitted as a linear function of the lightness there, a*b* =
A L* + B (the guided filter of He, Sun and Tang 2013, ECCV), and A and B, not the colours, are
resized to the full photo and applied to its own full-resolution L*: where the lightness has an
edge, the colour changes on it ("fast guided filter", He and Sun 2015). "bilinear" is the plain
resize.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from data import color
from data.limits import DEFAULT_MEGAPIXELS, pixel_problem
from models.presets import downsampling_factor
from inference.photo_io import FileError  # noqa: F401 (callers catch photos.FileError)

# Pillow modes split_image reads; read_image turns any other (LAB, HSV, YCbCr, F...) into RGB.
MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I", "I;16", "I;16L", "I;16B", "I;16N")
STRIP_PIXELS = 1 << 20  # Lab conversions run on ~1-megapixel strips: bounded memory at 50 megapixels


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
    lab = tf.concat([L, ab * color.AB_SCALE], axis=-1)
    return color.to_uint8(color.lab_to_rgb_keeping_lightness(lab))  # the photo's own L*, in gamut


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
    """Normalised a*b* predicted with the shorter side resized to `size`, (h, w, 2), and the L* the
    network saw, (h, w)."""
    k = size / min(L.shape[:2])
    h, w = max(1, round(L.shape[0] * k)), max(1, round(L.shape[1] * k))
    # Antialiased bilinear, as the training pipeline resizes (data/pipeline.py).
    small = tf.image.resize(L, (h, w), antialias=True)[:, :, 0].numpy()
    factor = downsampling_factor(model.architecture.encoder)
    padded = np.pad(small / color.L_SCALE - 1.0, ((0, -h % factor), (0, -w % factor)), mode="reflect")
    return model.predict_ab(padded[None, :, :, None])[0, :h, :w].numpy(), small


UPSAMPLING = ("guided", "bilinear")
GUIDED_RADIUS = 2      # the fitting windows: 5x5 pixels at the network's scale
GUIDED_EPSILON = 4.0   # in (L*)^2: lightness variations below about 2 L* within a window are not edges


def guided_coefficients(L_small, ab, radius=None, epsilon=None):
    """(A, B), each (h, w, 2): the guided filter's per-pixel linear model a*b* = A L* + B, fitted in
    the (2 radius + 1)^2 windows of the network's scale and averaged over the windows that cover
    each pixel. L_small (h, w) in L*, ab (h, w, 2) in any unit (A and B come out in it)."""
    from scipy.ndimage import uniform_filter
    radius = GUIDED_RADIUS if radius is None else radius
    epsilon = GUIDED_EPSILON if epsilon is None else epsilon

    def box(x):
        return uniform_filter(x, size=(2 * radius + 1, 2 * radius + 1, 1)[:x.ndim], mode="reflect")

    guide = L_small.astype(np.float64)
    mean_L, mean_ab = box(guide), box(ab.astype(np.float64))
    variance = box(guide * guide) - mean_L ** 2
    covariance = box(guide[..., None] * ab) - mean_L[..., None] * mean_ab
    A = covariance / (variance[..., None] + epsilon)
    B = mean_ab - A * mean_L[..., None]
    return box(A).astype(np.float32), box(B).astype(np.float32)


def bilinear_rows(image, height, top, bottom):
    """Rows top:bottom of `image` resized to `height` rows: bilinear with half-pixel centres, as
    tf.image.resize, without building the whole resized image."""
    y = np.clip((np.arange(top, bottom) + 0.5) * image.shape[0] / height - 0.5, 0, image.shape[0] - 1)
    y0 = np.floor(y).astype(int)
    t = (y - y0).astype(np.float32)[:, None, None]
    return image[y0] * (1 - t) + image[np.minimum(y0 + 1, image.shape[0] - 1)] * t


def join(L, ab, L_small=None):
    """Full-resolution L* (H, W, 1) with a*b* (h, w, 2) brought to it -> uint8 RGB (H, W, 3): guided
    by the lightness when L_small (h, w), the L* the network saw, is given; else resized bilinearly."""
    height, width = L.shape[:2]
    if L_small is not None:  # A and B of a*b* = A L* + B, resized in place of a*b* (module docstring)
        fields = np.concatenate(guided_coefficients(L_small, ab), axis=-1)
    else:
        fields = ab
    wide = tf.image.resize(fields, (fields.shape[0], width)).numpy()  # columns once; rows strip by strip
    rgb = np.empty((height, width, 3), np.uint8)

    def strip(top, bottom):
        rows = bilinear_rows(wide, height, top, bottom)
        strip_ab = rows if L_small is None else rows[..., :2] * L[top:bottom] + rows[..., 2:]
        rgb[top:bottom] = per_pixel(_lab_to_rgb8, L[top:bottom], strip_ab)

    on_all_cores(strip, strips(height, width))
    return rgb


def colorize_image(model, image, size, upsampling="guided"):
    """A PIL image of any mode -> the colorized PIL image, same size: RGB, or RGBA keeping its alpha.
    upsampling: how the network's colours reach the full resolution (UPSAMPLING, module docstring)."""
    if upsampling not in UPSAMPLING:
        raise ValueError(f"unknown upsampling {upsampling!r}; valid: {', '.join(UPSAMPLING)}")
    pixels, scale, alpha = split_image(image)
    L = lightness(pixels, scale)
    ab, L_small = predict_ab(model, L, size)
    guided = upsampling == "guided" and ab.shape[:2] != L.shape[:2]  # at the network's size: its own colours
    colorized = Image.fromarray(join(L, ab, L_small if guided else None))
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


def read_image(path, max_megapixels=DEFAULT_MEGAPIXELS, size=None):
    """A file's image, turned the way its EXIF says, in a mode split_image reads; FileError where it
    cannot be read or is over the pixel limit (data/limits.py: checked on the header, before any
    pixel is decoded; `size`: the shorter side the network will see)."""
    try:
        with Image.open(path) as image:
            problem = pixel_problem(*image.size, max_megapixels, size)
            if problem:
                raise FileError(problem)
            image = ImageOps.exif_transpose(image)  # a loaded copy, turned the right way up
            return image if image.mode in MODES else image.convert("RGB")
    except FileError:
        raise
    except Exception as e:  # Pillow raises many types on damaged files; all mean "cannot read"
        why = str(e).replace(f"'{path}'", "").replace(str(path), "").strip(" :")  # the line names it already
        raise FileError(f"cannot read it as an image ({type(e).__name__}{': ' + why if why else ''})") from None
