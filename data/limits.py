"""The pixel limit: what one image may cost to read.

Every reader (train.py's and test.py's folders and Places365, colorize.py, the web page) looks at
an image's header before decoding it and refuses an image of more than --max-megapixels pixels
(default 50, the same in every script), or one whose network input would be over a fortieth of
that (a long thin image, resized so that its shorter side is the model's size, is long as well).
Such a file is named once with its size and skipped; the others carry on. 50 megapixels decode to
150 MB of RGB; colorize.py's full-resolution path holds about 20 bytes a pixel, so about 1 GB at
the limit, and the network about 40 times that a pixel of its input, so about 1 GB at its own.

No TensorFlow here: options.py reads the default.
"""
from typing import NamedTuple

from PIL import Image

# Pillow's own check (a warning over 89 megapixels, an error over 179) gives way to this one,
# which every reader shares and a user can set.
Image.MAX_IMAGE_PIXELS = None

DEFAULT_MEGAPIXELS = 50.0
# A pixel of the network's input costs about 40 times a pixel of the full-resolution path (about
# 800 bytes against 20: the shipped model's colorize.py peaked 0.74 GB higher on a 128 x 8192 photo
# than on a 128 x 128 one, 2026-12-08), so the network's input gets a fortieth of the limit: 1.25
# megapixels by default, 128 x 9,766 at the shipped model's size, 256 x 4,883 at Places365's.
NETWORK_SHARE = 40
HELP = (f"refuse images of more pixels than this, or whose network input would have more than 1/{NETWORK_SHARE} "
        f"of it (a long thin image); each is named and skipped (default {DEFAULT_MEGAPIXELS:g})")


def pixel_problem(width, height, max_megapixels=DEFAULT_MEGAPIXELS, size=None):
    """Why an image of width x height may not be read (None: it may), for a network that sees
    its shorter side at `size` pixels (None: the image only)."""
    limit = max_megapixels * 1e6
    if width <= 0 or height <= 0:
        return f"has no pixels ({width}x{height})"
    if width * height > limit:
        return (f"is {width}x{height}, {width * height / 1e6:.0f} megapixels, over the limit of "
                f"{max_megapixels:g} (--max-megapixels)")
    if size:
        k = size / min(width, height)
        seen = round(width * k), round(height * k)
        if seen[0] * seen[1] > limit / NETWORK_SHARE:
            return (f"is {width}x{height}: the network would see it at {seen[0]}x{seen[1]}, "
                    f"{seen[0] * seen[1] / 1e6:.1f} megapixels, over its limit of {max_megapixels / NETWORK_SHARE:g} "
                    f"(1/{NETWORK_SHARE} of --max-megapixels {max_megapixels:g}): crop it, or raise --max-megapixels")
    return None


class Header(NamedTuple):
    width: int
    height: int
    format: str  # Pillow's name: "JPEG", "PNG", "WEBP", ...
    animated: bool


def read_header(path):
    """A file's Header, no pixels decoded; None where Pillow cannot open it (the decoder then
    fails, and names it)."""
    try:
        with Image.open(path) as image:
            return Header(*image.size, image.format, bool(getattr(image, "is_animated", False)))
    except Exception:  # Pillow raises many types for files it cannot read
        return None


def header_problem(path, max_megapixels=DEFAULT_MEGAPIXELS, size=None):
    """pixel_problem from a file's header; None for a file Pillow cannot open."""
    header = read_header(path)
    return pixel_problem(header.width, header.height, max_megapixels, size) if header else None
