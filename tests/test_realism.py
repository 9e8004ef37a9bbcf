"""evaluation/realism.py: the automatic Turing test tells grey copies from photos, and cannot tell a set
of photos from itself."""
import numpy as np

from evaluation.realism import classifier_test


def photos(n, seed=0):
    """Colourful images with structure: a random smooth colour field per image."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float32)
    return np.clip(np.kron(small, np.ones((1, 16, 16, 1))) + rng.normal(0, 8, (n, 64, 64, 3)), 0, 255).astype(np.uint8)


def test_two_copies_of_the_same_photos_are_indistinguishable():
    real = photos(200)
    accuracy, curve = classifier_test(real, real.copy(), epochs=3)
    assert len(curve) == 3
    assert accuracy == 0.5  # each held-out photo appears once as real and once as "colorized": one is wrong


def test_grey_copies_are_told_from_colour_photos():
    real = photos(200)
    grey = np.repeat(np.round(real.astype(np.float32) @ [0.299, 0.587, 0.114])[..., None], 3, -1).astype(np.uint8)
    accuracy, curve = classifier_test(real, grey, epochs=6)
    assert accuracy > 0.95 and curve[-1] == accuracy
