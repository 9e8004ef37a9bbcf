"""evaluation/metrics.py: hand-computed tiny cases, skimage as the reference, and the no-colour baseline on the
real CIFAR-10 test batch (datasets/cifar10/README.md)."""
import math
import pickle

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from evaluation import metrics


def _lab(lightness, a, b, shape=(1, 2, 2)):
    return np.stack([np.full(shape, v, float) for v in (lightness, a, b)], axis=-1)


def _random_pair(rng, shape, noise=25.0):
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a + rng.normal(0, noise, shape), 0, 255).round().astype(np.uint8)
    return a, b


def test_lab_accuracy_thresholds_and_rounding():
    true = _lab(50.0, 0.0, 0.0, shape=(8, 2, 2))
    # One image per case; every pixel of an image gets the same prediction.
    preds = [(52.0, 0.0, 0.0),   # dL = 2: passes
             (53.0, 0.0, 0.0),   # dL = 3: fails
             (50.0, 4.4, 0.0),   # da 4.4 rounds to 4: passes
             (50.0, 0.0, -4.4),  # db 4.4 rounds to 4: passes
             (50.0, 4.6, 0.0),   # da 4.6 rounds to 5: fails
             (50.0, 0.0, -5.0),  # db 5: fails
             (52.4, 4.4, 4.4),   # all at the edge after rounding: passes
             (52.6, 0.0, 0.0)]   # dL 2.6 rounds to 3: fails
    pred = np.concatenate([_lab(*p) for p in preds])
    np.testing.assert_array_equal(metrics.lab_accuracy(true, pred), [1, 0, 1, 1, 0, 0, 1, 0])
    # Rounding applies to each side, not to the difference: 0.4 vs 4.6 is 0 vs 5.
    np.testing.assert_array_equal(
        metrics.lab_accuracy(_lab(50, 0.4, 0), _lab(50, 4.6, 0)), [0.0])
    # The threshold option scales all three channels: at 4, dL <= 4 and da, db <= 8.8.
    assert metrics.lab_accuracy(_lab(50, 0, 0), _lab(54, 8.4, -8.4), thresh=4.0)[0] == 1.0
    assert metrics.lab_accuracy(_lab(50, 0, 0), _lab(54, 8.6, 0), thresh=4.0)[0] == 0.0


def test_lab_accuracy_is_a_per_image_share_of_pixels():
    true = _lab(50.0, 10.0, -10.0, shape=(2, 2, 2))
    pred = true.copy()
    pred[0, 0, 0, 1] += 20   # one of four pixels wrong in image 0
    pred[1, :, 0, 0] -= 30   # two of four pixels wrong in image 1
    np.testing.assert_array_equal(metrics.lab_accuracy(true, pred), [0.75, 0.5])


def test_mae_rgb_constant_offset_and_uint8_safety():
    a = np.full((2, 2, 2, 3), 100, np.uint8)
    b = a.copy()
    b[0] += 7
    b[1, ..., 1] = 40  # |100 - 40| on one channel of three
    np.testing.assert_allclose(metrics.mae_rgb(a, b), [7.0, 20.0])
    # uint8 inputs must not wrap around: 0 - 255 is 255 away, not 1.
    np.testing.assert_allclose(metrics.mae_rgb(np.zeros((1, 2, 2, 3), np.uint8),
                                               np.full((1, 2, 2, 3), 255, np.uint8)), [255.0])
    assert metrics.mae_rgb(a, a.astype(float)).dtype == np.float64


def test_psnr_matches_skimage_and_caps_identical_images():
    rng = np.random.default_rng(1)
    a, b = _random_pair(rng, (5, 32, 32, 3))
    expected = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(a, b)]
    np.testing.assert_allclose(metrics.psnr(a, b), expected, rtol=1e-12)
    # A constant error of 255 is 0 dB; of 1 is 20 log10(255) = 48.13 dB.
    zeros = np.zeros((1, 4, 4, 3), np.uint8)
    np.testing.assert_allclose(metrics.psnr(zeros, zeros + 255), [0.0])
    np.testing.assert_allclose(metrics.psnr(zeros, zeros + 1), [20 * math.log10(255)])
    np.testing.assert_allclose(metrics.psnr(a, a), 100.0)
    np.testing.assert_allclose(metrics.psnr(a[:1], a[:1], max_db=60.0), [60.0])
    # Whole-set PSNR from the mean MSE, which is how datasets/cifar10/README.md quotes it.
    mse = metrics.mse_rgb(a, b)
    assert metrics.psnr_from_mse(mse.mean()) == pytest.approx(
        peak_signal_noise_ratio(a, b, data_range=255))


@pytest.mark.parametrize("shape", [(4, 32, 32, 3), (3, 64, 48, 3), (2, 11, 17, 3), (2, 200, 131, 3)])
def test_ssim_matches_skimage(shape):
    rng = np.random.default_rng(sum(shape))
    a, b = _random_pair(rng, shape)
    b[0] = a[0]  # identical images score exactly 1
    expected = [structural_similarity(x, y, data_range=255, channel_axis=-1,
                                      gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False) for x, y in zip(a, b)]
    ours = metrics.ssim(a, b, chunk=2)  # a chunk boundary inside the batch (200x131: the photo path)
    np.testing.assert_allclose(ours, expected, atol=1e-10)
    assert ours[0] == pytest.approx(1.0)
    assert np.all(ours[1:] < 0.99)


def test_ssim_rejects_images_smaller_than_the_window():
    a = np.zeros((1, 10, 32, 3))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(a, a)


def test_auc_ab_hand_computed():
    true = _lab(50, 0, 0, shape=(5, 2, 2))
    pred = np.concatenate([_lab(50, 0, 0),      # identical: every threshold passes
                           _lab(50, 3, 4),      # distance 5: thresholds 5..150 pass
                           _lab(70, 3, 4),      # L is ignored
                           _lab(50, 2.5, 0),    # distance 2.5: thresholds 3..150
                           _lab(50, 200, 0)])   # beyond 150: none
    np.testing.assert_allclose(metrics.auc_ab(true, pred),
                               [1.0, 146 / 151, 146 / 151, 148 / 151, 0.0])
    np.testing.assert_allclose(metrics.auc_ab(true[:1], pred[3:4], max_thresh=10), [8 / 11])


def test_auc_ab_equals_the_mean_of_the_accuracy_curve():
    rng = np.random.default_rng(2)
    true = rng.uniform(-100, 100, (3, 6, 5, 3))
    pred = true + rng.normal(0, 40, true.shape)
    d = np.hypot(*(true - pred)[..., 1:].transpose(3, 0, 1, 2))
    curve = np.stack([(d <= t).mean(axis=(1, 2)) for t in range(151)])
    np.testing.assert_allclose(metrics.auc_ab(true, pred), curve.mean(axis=0))


def test_colourfulness_hand_computed():
    grey = np.full((1, 2, 2, 3), 128, np.uint8)
    red = np.zeros((1, 2, 2, 3), np.uint8)
    red[..., 0] = 255
    # Red: rg = 255, yb = 127.5 everywhere, so no spread: M = 0.3 sqrt(255^2 + 127.5^2).
    np.testing.assert_allclose(metrics.colourfulness(np.concatenate([grey, red])),
                               [0.0, 0.3 * math.hypot(255, 127.5)])
    # Half red, half green: rg = +-255 (std 255, mean 0), yb = 127.5 (std 0):
    # M = 255 + 0.3 * 127.5.
    half = red.astype(float)
    half[0, :, 1] = [0, 255, 0]
    np.testing.assert_allclose(metrics.colourfulness(half), [255 + 0.3 * 127.5])


def test_ab_histogram_bins_centred_on_multiples_of_ten():
    # Grey is a bin's centre; 4.9 rounds to it, 5.1 to the next; beyond +-110 lands at the edge.
    lab = np.array([[[[50, 0, 0], [50, 4.9, -4.9], [50, 5.1, 0], [50, -300, 300]]]], float)
    h = metrics.ab_histogram(lab)
    assert h.shape == (23, 23) and h.sum() == 4
    assert h[11, 11] == 2 and h[12, 11] == 1 and h[0, 22] == 1


def test_histogram_intersection_is_the_shared_share():
    grey = metrics.ab_histogram(_lab(50, 0, 0, (1, 2, 2)))
    half = metrics.ab_histogram(np.concatenate([_lab(50, 0, 0, (1, 1, 2)), _lab(50, 40, 20, (1, 1, 2))], axis=1))
    assert metrics.histogram_intersection(grey, grey) == 1.0
    assert metrics.histogram_intersection(grey, half) == 0.5      # only the grey half is shared
    assert metrics.histogram_intersection(grey, 3 * half) == 0.5  # scale-free: shares, not counts
    assert metrics.histogram_intersection(grey, metrics.ab_histogram(_lab(50, 40, 20))) == 0.0


@pytest.mark.slow
def test_no_colour_baseline_on_real_cifar10(real_cifar10):
    """datasets/cifar10/README.md: predicting a = b = 0 scores 24.63 %, MAE 12.40, 21.96 dB."""
    with open(real_cifar10 / "test_batch", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    rgb = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert rgb.shape == (10000, 32, 32, 3) and rgb.dtype == np.uint8
    lab = rgb2lab(rgb)
    lab_pred = lab.copy()
    lab_pred[..., 1:] = 0
    rgb_pred = lab2rgb(lab_pred) * 255  # float, unquantised
    rgb_pred_u8 = np.round(rgb_pred).astype(np.uint8)

    # Accuracy: the same 24.63 % with the prediction in Lab or after a uint8 RGB round trip.
    assert 100 * metrics.lab_accuracy(lab, lab_pred).mean() == pytest.approx(24.63, abs=0.01)
    assert 100 * metrics.lab_accuracy(lab, rgb2lab(rgb_pred_u8)).mean() == pytest.approx(
        24.63, abs=0.01)
    # MAE: 12.40 with the unquantised prediction (12.398); quantising first gives 12.393.
    assert metrics.mae_rgb(rgb, rgb_pred).mean() == pytest.approx(12.398, abs=0.001)
    assert metrics.mae_rgb(rgb, rgb_pred_u8).mean() == pytest.approx(12.393, abs=0.001)
    # PSNR: 21.96 dB is the whole-set figure, not the mean of per-image PSNRs (113 test images
    # are grey and score the 100 dB cap once quantised).
    for pred in (rgb_pred, rgb_pred_u8):
        mse = metrics.mse_rgb(rgb, pred)
        assert metrics.psnr_from_mse(mse.mean()) == pytest.approx(21.96, abs=0.005)
        assert metrics.psnr(rgb, pred).mean() > 25.0


def test_ddcolor_colourfulness_takes_the_opponent_channels_in_absolute_value():
    red = np.zeros((1, 4, 4, 3))
    red[..., 0] = 255  # |R - G| = 255, |(R + G) / 2 - B| = 127.5 everywhere: no spread
    assert metrics.colourfulness_ddcolor(red)[0] == pytest.approx(0.3 * np.hypot(255, 127.5))
    assert metrics.colourfulness_ddcolor(np.full((2, 4, 4, 3), 90.0)).tolist() == [0.0, 0.0]
    # Half the pixels reddish, half greenish: R - G is +-50, a spread for Hasler and Suesstrunk,
    # a constant 50 for DDColor; (R + G) / 2 - B is 25 for both.
    x = np.full((1, 2, 2, 3), 100.0)
    x[0, 0, :, 0], x[0, 1, :, 1] = 150, 150
    assert metrics.colourfulness(x)[0] == pytest.approx(50 + 0.3 * 25)
    assert metrics.colourfulness_ddcolor(x)[0] == pytest.approx(0.3 * np.hypot(50, 25))


def test_published_tables_score_uint8_images_at_256():
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 64, 48, 3))
    out = metrics.at_256(rgb)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8
    same = metrics.at_256(np.round(rgb[:, :16, :16] * 0 + 77).astype(np.float64))
    assert (same == 77).all()
