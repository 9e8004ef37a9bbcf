"""sRGB <-> CIE L*a*b* (D65, 2 degree observer) in TensorFlow, matching skimage.color.

The networks work on normalised Lab: L/50 - 1 in [-1, 1] goes in, a/110 and b/110 come out
(docs/recipe.md, "Colour"). Everything here is vectorised TF so it runs inside tf.data maps and
tf.functions, on any batch shape (..., 3).
"""
import numpy as np
import tensorflow as tf

# skimage.color.colorconv: sRGB matrix and the D65 / 2 degree reference white.
_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
# Luminance Y (relative to the white's) from linear RGB: the only input of L*.
Y_FROM_LINEAR_RGB = _XYZ_FROM_RGB[1] / _WHITE_D65[1]

# Normalisation of the reference code: L in [0, 100] -> [-1, 1]; a, b in [-110, 110] -> [-1, 1].
L_SCALE, AB_SCALE = 50.0, 110.0


def _matmul_last(x, matrix):
    return tf.tensordot(x, tf.constant(matrix.T, x.dtype), axes=1)


def rgb_to_lab(rgb):
    """sRGB in [0, 1] (float) or uint8 -> absolute Lab (L in [0, 100])."""
    if rgb.dtype == tf.uint8:
        rgb = tf.cast(rgb, tf.float32) / 255.0
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    linear = tf.where(rgb > 0.04045, tf.pow((rgb + 0.055) / 1.055, 2.4), rgb / 12.92)
    # Fold the white-point division into the matrix: one tensordot instead of two passes.
    xyz = _matmul_last(linear, _XYZ_FROM_RGB / _WHITE_D65[:, None])
    f = tf.where(xyz > 0.008856, tf.pow(tf.maximum(xyz, 0.008856), 1.0 / 3.0),
                 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def srgb_to_linear_table(levels):
    """numpy: linear RGB of each of `levels` evenly spaced sRGB values 0..1 (a lookup table for
    integer pixels), float32, as rgb_to_lab linearises."""
    v = np.arange(levels, dtype=np.float64) / (levels - 1)
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92).astype(np.float32)


def lightness_from_luminance(y):
    """numpy: L* in [0, 100] from relative luminance Y, as rgb_to_lab computes it."""
    f = np.where(y > 0.008856, np.cbrt(np.maximum(y, 0.008856)), 7.787 * y + 16.0 / 116.0)
    return (116.0 * f - 16.0).astype(np.float32)


def lab_to_linear_rgb(lab):
    """Absolute Lab -> linear RGB, unclipped: outside [0, 1] where the colour is out of gamut."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    L, a, b = tf.unstack(lab, axis=-1)
    fy = (L + 16.0) / 116.0
    # skimage clips negative z before the cube (out-of-gamut blues).
    f = tf.stack([a / 500.0 + fy, fy, tf.maximum(fy - b / 200.0, 0.0)], axis=-1)
    xyz = tf.where(f > 0.2068966, f * f * f, (f - 16.0 / 116.0) / 7.787)
    return _matmul_last(xyz * _WHITE_D65.astype(np.float32), _RGB_FROM_XYZ)


def linear_to_srgb(linear):
    """Linear RGB -> sRGB float, clipped to [0, 1] (as skimage does)."""
    srgb = tf.where(linear > 0.0031308,
                    1.055 * tf.pow(tf.maximum(linear, 0.0031308), 1.0 / 2.4) - 0.055,
                    linear * 12.92)
    return tf.clip_by_value(srgb, 0.0, 1.0)


def lab_to_rgb(lab):
    """Absolute Lab -> sRGB float in [0, 1] (clipped in RGB, as skimage does: an out-of-gamut colour
    changes lightness too; the metrics use this, as the paper's code did)."""
    return linear_to_srgb(lab_to_linear_rgb(lab))


GAMUT_STEPS = 12  # bisection steps of fit_chroma: the chroma to 1/4096 of the prediction's
GAMUT_TOLERANCE = 1e-6  # linear RGB this far outside [0, 1] counts as inside (float32 rounding)


def fit_chroma(lab, steps=GAMUT_STEPS):
    """Absolute Lab whose out-of-gamut colours have their chroma reduced, at their own L* and hue
    (a*, b* scaled by one factor), to the largest fraction of it that sRGB can show. In-gamut
    colours are unchanged; the lightness is always the input's (grey is in gamut at every L*)."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    L, ab = lab[..., :1], lab[..., 1:]

    def fits(scale):
        linear = lab_to_linear_rgb(tf.concat([L, ab * scale], axis=-1))
        return tf.reduce_all(tf.abs(linear - 0.5) <= 0.5 + GAMUT_TOLERANCE, axis=-1, keepdims=True)

    low = tf.where(fits(1.0), 1.0, 0.0)  # the largest scale known to fit
    high = tf.ones_like(low)
    for _ in range(steps):
        middle = (low + high) / 2.0
        ok = fits(middle)
        low, high = tf.where(ok, middle, low), tf.where(ok, high, middle)
    return tf.concat([L, ab * low], axis=-1)


def lab_to_rgb_keeping_lightness(lab):
    """Absolute Lab -> sRGB float in [0, 1], out-of-gamut colours brought in by fit_chroma: the
    output's L* is the input's to within the rounding of its encoding (colorize.py, serve.py)."""
    return lab_to_rgb(fit_chroma(lab))


def rgb_to_model_input(rgb):
    """RGB (uint8 or [0, 1]) -> (L, ab) normalised for the networks, shapes (..., 1), (..., 2)."""
    lab = rgb_to_lab(rgb)
    return lab[..., :1] / L_SCALE - 1.0, lab[..., 1:] / AB_SCALE


def model_output_to_lab(L, ab):
    """Normalised (L, ab) -> absolute Lab (..., 3)."""
    L = tf.cast(L, tf.float32)
    ab = tf.cast(ab, tf.float32)
    return tf.concat([(L + 1.0) * L_SCALE, ab * AB_SCALE], axis=-1)


def model_output_to_rgb(L, ab):
    """Normalised (L, ab) -> sRGB float in [0, 1]."""
    return lab_to_rgb(model_output_to_lab(L, ab))


def to_uint8(rgb):
    """[0, 1] float -> uint8 with rounding (skimage.util.img_as_ubyte rounds too)."""
    return tf.cast(tf.round(tf.clip_by_value(rgb, 0.0, 1.0) * 255.0), tf.uint8)
