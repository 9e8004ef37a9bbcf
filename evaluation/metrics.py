"""Evaluation metrics: pure NumPy, one float64 value per image.

Every function takes a batch shaped (N, H, W, 3) and returns an array of shape (N,), so a test set
can be scored batch by batch and averaged at the end (all images of a set share one size, so the
mean of per-image values equals the pixel-level mean for accuracy, MAE, AuC and MSE).

Conventions (docs/recipe.md, "Evaluation"):
- Lab is absolute CIE L*a*b* as skimage.color.rgb2lab gives it (L in [0, 100], a, b in about
  [-110, 110]); RGB is on the 0-255 scale, uint8 or float.
- PSNR is per image here. The dataset figure quoted in datasets/cifar10/README.md (21.96 dB for the
  no-colour prediction) is the PSNR of the whole set, 10 log10(255^2 / mean MSE), i.e.
  `psnr_from_mse(mse_rgb(...).mean())`; the mean of per-image PSNRs is a different, larger number
  on the same prediction (25.47 dB unquantised; 25.49 dB quantised to uint8, where the 113 grey
  test images score the 100 dB cap).

How the no-colour baseline of datasets/cifar10/README.md is reproduced (tests/test_metrics.py): the
CIFAR-10 test batch to Lab with skimage; prediction = L kept, a = b = 0.
- Accuracy 24.63 %: lab_accuracy(Lab(true), prediction Lab) averaged over images. It makes no
  difference to the figure whether the prediction is taken in Lab directly (24.6314 %) or after a
  round trip through uint8 RGB, round(lab2rgb(pred) * 255) (24.6317 %).
- MAE 12.40: mae_rgb(true uint8, lab2rgb(pred) * 255) with the prediction left unquantised
  (12.3978). Quantising the prediction to uint8 first gives 12.3930, i.e. 12.39.
- PSNR 21.96 dB: whole-set PSNR, as above (21.9571 unquantised, 21.9565 quantised).
"""
import numpy as np
from scipy import ndimage


def _pair(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected two batches shaped (N, H, W, 3), got {a.shape} and {b.shape}")
    return a, b


def lab_accuracy(lab_true, lab_pred, thresh=2.0):
    """Share of pixels whose rounded Lab is within (thresh, 2.2 thresh, 2.2 thresh) of the truth."""
    # Nazeri et al. 2018, section 5: round both to integers; a pixel is correct when every channel
    # is within 2 % of its range (L: 100, a and b: 220), i.e. 2, 4.4, 4.4 at the default thresh.
    # np.rint rounds halves to even, like tf.round in the reference code.
    t, p = _pair(lab_true, lab_pred)
    d = np.abs(np.rint(t) - np.rint(p))
    ok = (d[..., 0] <= thresh) & (d[..., 1] <= 2.2 * thresh) & (d[..., 2] <= 2.2 * thresh)
    return ok.mean(axis=(1, 2), dtype=np.float64)


def mae_rgb(rgb_true, rgb_pred):
    """Mean absolute error on the 0-255 RGB scale."""
    # Nazeri et al. 2018, section 5: MAE over RGB pixel intensities (0-255).
    t, p = _pair(rgb_true, rgb_pred)
    return np.abs(t - p).mean(axis=(1, 2, 3))


def mse_rgb(rgb_true, rgb_pred):
    """Mean squared error on the 0-255 RGB scale (the building block of PSNR)."""
    t, p = _pair(rgb_true, rgb_pred)
    return np.square(t - p).mean(axis=(1, 2, 3))


def psnr_from_mse(mse, data_range=255.0, max_db=100.0):
    """PSNR in dB from an MSE (per image, or the mean MSE of a whole set), capped at max_db."""
    # Identical images have MSE 0 and infinite PSNR; one inf would make any average inf, so the
    # MSE is floored where the PSNR reaches max_db. Below the cap this is exactly
    # skimage.metrics.peak_signal_noise_ratio(data_range=255).
    mse = np.maximum(np.asarray(mse, dtype=np.float64), data_range**2 * 10.0 ** (-max_db / 10.0))
    return 10.0 * np.log10(data_range**2 / mse)


def psnr(rgb_true, rgb_pred, max_db=100.0):
    """Per-image PSNR in dB with data range 255, capped at max_db for identical images."""
    return psnr_from_mse(mse_rgb(rgb_true, rgb_pred), 255.0, max_db)


def _window_matrix(n, sigma, truncate):
    """The Gaussian filter along one axis of length n, border cropped, as an (n - 2 r, n) matrix."""
    # Filtering the identity with ndimage itself gives exactly its 'reflect' border handling.
    r = int(truncate * sigma + 0.5)  # window radius, as ndimage computes it
    k = ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0, truncate=truncate, mode="reflect")
    return k[r:n - r]


def ssim_window(sigma=1.5, truncate=3.5):
    """The side of SSIM's Gaussian window: an image must be at least this wide and high."""
    return 2 * int(truncate * sigma + 0.5) + 1


SSIM_MIN_SIDE = ssim_window()  # 11


# Photos whose longer side is at most this use the dense filter matrices (fast for small images,
# where a product is cheaper than a filter call); larger ones the separable filter, whose cost grows
# with the pixels, not with the pixels times the side.
SSIM_MATRIX_SIDE = 128
SSIM_CHUNK_PIXELS = 2 ** 22  # pixels per plane batch: bounds the float64 moments of a large photo


def ssim(rgb_true, rgb_pred, data_range=255.0, sigma=1.5, chunk=512):
    """Per-image SSIM, mean over the R, G, B channels, Gaussian window."""
    # Wang et al. 2004 (K1 = 0.01, K2 = 0.03, Gaussian window sigma 1.5, population covariance),
    # computed as skimage.metrics.structural_similarity(data_range=255, channel_axis=-1,
    # gaussian_weights=True, sigma=1.5, use_sample_covariance=False) does: an ndimage Gaussian
    # truncated at 3.5 sigma with 'reflect' borders, then a border of one window radius cropped
    # before averaging. For small images the separable filter-and-crop is two small matrices, so
    # the five local moments of a chunk of images cost two matrix products (10,000 32x32 images in
    # about 3 s); for photos it is ndimage's filter itself, one channel at a time.
    t, p = np.asarray(rgb_true), np.asarray(rgb_pred)
    if t.shape != p.shape or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected two batches shaped (N, H, W, 3), got {t.shape} and {p.shape}")
    truncate = 3.5  # skimage's value
    size = ssim_window(sigma, truncate)
    height, width = t.shape[1:3]
    if min(height, width) < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size}, got {height}x{width}")
    if max(height, width) <= SSIM_MATRIX_SIDE:
        kh, kw = _window_matrix(height, sigma, truncate), _window_matrix(width, sigma, truncate)

        def local_means(planes):
            return kh @ planes @ kw.T
        channels = [slice(None)]  # all three at once
    else:
        r = size // 2

        def local_means(planes):  # along the rows, cropped, then along the columns, cropped
            planes = ndimage.gaussian_filter1d(planes, sigma, axis=-1, truncate=truncate, mode="reflect")
            planes = planes[..., r:width - r]
            return ndimage.gaussian_filter1d(planes, sigma, axis=-2, truncate=truncate, mode="reflect")[
                ..., r:height - r, :]
        channels = [slice(c, c + 1) for c in range(3)]
        chunk = max(1, min(chunk, SSIM_CHUNK_PIXELS // (height * width)))
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    out = np.zeros(len(t))
    for i in range(0, len(t), chunk):
        for c in channels:
            # Channels first so that rows and columns are the last two axes.
            x = np.moveaxis(t[i:i + chunk, ..., c], -1, 1).astype(np.float64)
            y = np.moveaxis(p[i:i + chunk, ..., c], -1, 1).astype(np.float64)
            ux, uy, uxx, uyy, uxy = local_means(np.stack([x, y, x * x, y * y, x * y]))
            vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
            s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
            out[i:i + chunk] += s.mean(axis=(1, 2, 3)) * (x.shape[1] / 3)  # this channel's share
    return out


def auc_ab(lab_true, lab_pred, max_thresh=150):
    """Area under the curve of ab accuracy against threshold 0..max_thresh, in [0, 1]."""
    # Zhang et al. 2016 ("raw accuracy AuC"): the share of pixels whose Euclidean a*b* distance is
    # <= t, for t = 0, 1, ..., 150, averaged over the thresholds. For integer t, d <= t exactly
    # when ceil(d) <= t, so each pixel contributes (max_thresh - ceil(d) + 1) / (max_thresh + 1)
    # (0 when ceil(d) > max_thresh) without a loop over thresholds.
    t, p = _pair(lab_true, lab_pred)
    max_thresh = int(max_thresh)
    d = np.hypot(t[..., 1] - p[..., 1], t[..., 2] - p[..., 2])
    passed = np.clip(max_thresh + 1 - np.ceil(d), 0, max_thresh + 1)
    return passed.mean(axis=(1, 2)) / (max_thresh + 1)


def colourfulness(rgb, absolute=False):
    """Hasler and Suesstrunk's colourfulness M of each image (0 for a grey image); absolute: the
    opponent channels in absolute value, as DDColor's evaluation computes it (colourfulness_ddcolor)."""
    # Hasler and Suesstrunk 2003, "Measuring colourfulness in natural images", eq. 3 (M^(3)):
    # rg = R - G, yb = (R + G) / 2 - B on 0-255 values; population standard deviations.
    x = np.asarray(rgb, dtype=np.float64)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected a batch shaped (N, H, W, 3), got {x.shape}")
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    if absolute:
        rg, yb = np.abs(rg), np.abs(yb)
    std = np.sqrt(rg.var(axis=(1, 2)) + yb.var(axis=(1, 2)))
    mean = np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2)
    return std + 0.3 * mean


def ab_histogram(lab, bin_size=10, limit=110):
    """Pixel counts of a batch's a*b* in square bins `bin_size` wide centred on multiples of
    `bin_size` from -limit to limit (values beyond land in the edge bins; grey is a bin's centre):
    a (2 limit / bin_size + 1)^2 float64 array.

    The grid is Zhang et al. 2016's quantised a*b* space (bins of 10); summed over a set, it is
    the set's palette: how often each colour is used, whatever the image or pixel."""
    x = np.asarray(lab, dtype=np.float64)
    half = int(round(limit / bin_size))
    index = np.clip(np.round(x[..., 1:3] / bin_size), -half, half).astype(np.int64) + half
    bins = 2 * half + 1
    flat = (index[..., 0] * bins + index[..., 1]).ravel()
    return np.bincount(flat, minlength=bins * bins).astype(np.float64).reshape(bins, bins)


def histogram_intersection(p, q):
    """sum(min(p, q)) of two histograms normalised to sum 1: 1 for the same distribution, 0 for
    disjoint ones (Swain and Ballard 1991)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


def colourfulness_ddcolor(rgb):
    """Colourfulness as DDColor's evaluation computes it (Kang et al. 2023, basicsr/metrics): Hasler
    and Suesstrunk's M with the opponent channels in absolute value, |R - G| and |(R + G) / 2 - B|,
    per image. Published tables score uint8 sRGB images at 256x256 (`at_256`)."""
    return colourfulness(rgb, absolute=True)


def at_256(rgb):
    """A batch as the uint8 sRGB images at 256x256 that published colorization tables score: each
    image rounded to uint8, then resized to 256x256 (Pillow's bicubic filter)."""
    from PIL import Image
    x = np.round(np.clip(np.asarray(rgb, dtype=np.float64), 0, 255)).astype(np.uint8)
    if x.shape[1:3] == (256, 256):
        return x
    return np.stack([np.asarray(Image.fromarray(image).resize((256, 256), Image.BICUBIC)) for image in x])
