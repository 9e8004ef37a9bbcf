import numpy as np
import pytest
import tensorflow as tf
from skimage import color as skcolor

from data import color


def test_rgb_to_lab_matches_skimage_on_every_grey_and_random_colours():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    rgb[0, :, :] = np.arange(0, 256, 4)[:, None]  # the whole grey ramp, including black and white
    rgb[1, :8] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                  [255, 0, 255], [1, 2, 3], [254, 253, 252]]
    got = color.rgb_to_lab(tf.constant(rgb)).numpy()
    assert np.abs(got - skcolor.rgb2lab(rgb)).max() < 0.05


def test_lab_to_rgb_matches_skimage_within_one_level_including_out_of_gamut():
    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(0, 100, (50, 50)), rng.uniform(-110, 110, (50, 50)),
                    rng.uniform(-110, 110, (50, 50))], axis=-1)
    with pytest.warns(UserWarning):  # skimage warns about the clipped out-of-gamut values
        expected = skcolor.lab2rgb(lab)
    got = color.lab_to_rgb(tf.constant(lab, tf.float32)).numpy()
    assert np.abs(got - expected).max() * 255 < 1.0


def test_model_input_round_trips_to_the_same_uint8_image():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    L, ab = color.rgb_to_model_input(tf.constant(rgb))
    assert L.shape == (8, 16, 16, 1) and ab.shape == (8, 16, 16, 2)
    assert -1.0 <= L.numpy().min() and L.numpy().max() <= 1.0 and np.abs(ab.numpy()).max() <= 1.0
    back = color.to_uint8(color.model_output_to_rgb(L, ab)).numpy()
    assert np.abs(back.astype(int) - rgb).max() <= 1


def test_fit_chroma_keeps_in_gamut_colours_and_brings_the_others_to_the_gamuts_edge():
    rng = np.random.default_rng(3)
    lab = np.stack([rng.uniform(1, 99, 4000), rng.uniform(-110, 110, 4000), rng.uniform(-110, 110, 4000)], -1)
    linear = color.lab_to_linear_rgb(tf.constant(lab, tf.float32)).numpy()
    inside = np.all((linear >= 0) & (linear <= 1), axis=-1)
    assert 0.05 < inside.mean() < 0.95  # both kinds are tested
    fitted = color.fit_chroma(tf.constant(lab, tf.float32)).numpy()
    np.testing.assert_array_equal(fitted[:, 0], lab[:, 0].astype(np.float32))  # lightness untouched
    np.testing.assert_allclose(fitted[inside], lab[inside].astype(np.float32), rtol=1e-6)
    scale = np.hypot(*fitted[:, 1:].T) / np.hypot(*lab[:, 1:].T)
    assert np.all(scale[~inside] < 1) and np.all(scale > 0)
    np.testing.assert_allclose(fitted[~inside, 1:] / scale[~inside, None], lab[~inside, 1:], rtol=1e-4)  # hue kept
    assert np.all(np.abs(color.lab_to_linear_rgb(tf.constant(fitted)).numpy() - 0.5) <= 0.5 + 1e-5)
    # the largest that fits, to the bisection's step: a step more of the original chroma leaves the gamut
    more = scale[~inside, None] + 2.0 ** -(color.GAMUT_STEPS - 1)
    beyond = np.concatenate([lab[~inside, :1], lab[~inside, 1:] * more], axis=-1).astype(np.float32)
    linear = color.lab_to_linear_rgb(tf.constant(beyond)).numpy()
    assert not np.all(np.abs(linear - 0.5) <= 0.5 + color.GAMUT_TOLERANCE, axis=-1).any()
