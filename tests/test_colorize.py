"""colorize.py on a tiny checkpoint: every image mode and format, full-resolution outputs that keep
the input's lightness, and the file handling (folders, skips, failures, never overwriting inputs)."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage.color import rgb2lab

import colorize
from inference import photo_io
from inference import photos
from data import color
from models.architecture import STANDALONE, Architecture
from models.colorization import ColorizationModel
from options import TrainingConfig
from inference.loading import load_for_inference
from models.presets import PRESETS


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_for_inference(checkpoint)[0]


def photo(height, width, seed=0):
    """Smooth colours plus noise: something like a photo, in every part of the RGB cube."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width] / max(height, width, 2)
    smooth = np.stack([xx, yy, 1 - xx * yy], axis=-1) * 200 + 20
    return np.clip(smooth + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


def lightness(rgb):
    return rgb2lab(np.asarray(rgb.convert("RGB") if isinstance(rgb, Image.Image) else rgb))[..., 0]


def run(capsys, *args):
    """(exit status, last line of stdout, lines of stderr) of colorize.py."""
    status = colorize.main([*map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return status, out.strip().splitlines()[-1] if out.strip() else "", err.strip().splitlines()


# ---------------------------------------------------------------------------- colorize_image
@pytest.mark.parametrize("height, width", [(1, 1), (17, 311), (311, 17), (16, 16), (45, 60)])
def test_output_has_the_input_size_and_keeps_its_lightness(model, height, width):
    rgb = photo(height, width)
    out = photos.colorize_image(model, Image.fromarray(rgb), 16)
    assert out.mode == "RGB" and out.size == (width, height)
    assert np.mean(np.abs(lightness(out) - lightness(rgb))) < 0.5


def test_the_colours_are_the_models_prediction(model):
    # At the network's own size there is no resizing or padding: a*b* must be exactly the model's
    # (up to 8-bit rounding), which catches a wrong normalisation, channel order or transposition.
    rgb = photo(16, 32)
    out = np.asarray(photos.colorize_image(model, Image.fromarray(rgb), 16))
    L = lightness(rgb)[None, :, :, None] / color.L_SCALE - 1
    ab = model.predict_ab(L.astype(np.float32))[0].numpy() * color.AB_SCALE
    assert np.abs(ab).mean() > 1  # the untrained model does colour, so the comparison means something
    assert np.mean(np.abs(rgb2lab(out)[..., 1:] - ab)) < 1.0


class SaturatedModel:
    """A model whose every prediction is a corner of the a*b* range (a*, b* = +-110): almost all
    of it outside sRGB at every lightness."""
    architecture = Architecture(STANDALONE, [(8, 1)], 0, 16)

    def predict_ab(self, L):
        h, w = L.shape[1:3]
        corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float32)
        return tf.constant(corners[(np.arange(h * w) % 4)].reshape(1, h, w, 2))


def test_saturated_predictions_keep_the_inputs_lightness_and_hue(model):
    rgb = photo(48, 64)
    rgb[:4] = 0
    rgb[4:8] = 255  # black and white rows: only grey fits there
    out = np.asarray(photos.colorize_image(SaturatedModel(), Image.fromarray(rgb), 48))
    dL = np.abs(lightness(out) - lightness(rgb))
    # 8-bit rounding of the output moves L* by at most about 0.5; clipping in RGB moved it by tens
    assert dL.max() < 1.0 and dL.mean() < 0.25, (dL.max(), dL.mean())
    saturated = np.concatenate([lightness(rgb)[..., None], np.full((48, 64, 2), 110.0)], axis=-1)
    clipped = color.to_uint8(color.lab_to_rgb(saturated.astype(np.float32))).numpy()
    assert np.abs(lightness(clipped) - lightness(rgb)).max() > 10  # what the old clipping did
    lab = rgb2lab(out)
    colourful = np.hypot(lab[8:, :, 1], lab[8:, :, 2]) > 10
    assert colourful.mean() > 0.9  # chroma is reduced, not removed
    hue = np.arctan2(lab[8:, :, 2], lab[8:, :, 1])[colourful]
    corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])[(np.arange(48 * 64) % 4).reshape(48, 64)]  # (a*, b*)
    wanted = np.arctan2(corners[8:, :, 1], corners[8:, :, 0])[colourful]
    assert np.median(np.abs(np.angle(np.exp(1j * (hue - wanted))))) < 0.1  # each pixel's hue kept


def test_colorizing_is_deterministic_inference(model):
    image = Image.fromarray(photo(40, 24))
    first, second = (np.asarray(photos.colorize_image(model, image, 16)) for _ in range(2))
    assert np.array_equal(first, second)  # dropout is off


def test_size_changes_what_the_network_sees_not_the_output_size(model):
    image = Image.fromarray(photo(48, 64))
    small, large = (np.asarray(photos.colorize_image(model, image, s)) for s in (16, 48))
    assert small.shape == large.shape == (48, 64, 3)
    assert not np.array_equal(small, large)


def test_16_bit_grey_keeps_its_full_precision(model):
    grey = (np.arange(64 * 80).reshape(64, 80) * 12 + 5).astype(np.uint16)  # 16-bit steps, 8-bit fools
    image = Image.fromarray(grey)
    assert image.mode == "I;16"
    pixels, scale, alpha = photos.split_image(image)
    L = photos.lightness(pixels, scale)[..., 0]
    expected = rgb2lab(np.repeat((grey / 65535.0)[..., None], 3, axis=-1))[..., 0]
    assert alpha is None and np.abs(L - expected).max() < 1e-3
    out = photos.colorize_image(model, image, 16)
    assert out.mode == "RGB" and out.size == (80, 64)
    # The median, not the mean: this gradient goes down to black, where the untrained model's strong
    # a*b* fall outside sRGB and clipping (as skimage's lab2rgb) moves L*.
    assert np.median(np.abs(lightness(out) - expected)) < 0.5


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "RGBA", "LA", "I"])
def test_every_mode_gives_an_rgb_image_and_keeps_alpha_exactly(model, mode):
    rgba = np.dstack([photo(20, 30), np.random.default_rng(1).integers(0, 256, (20, 30), dtype=np.uint8)])
    image = Image.fromarray(rgba).convert(mode)
    out = photos.colorize_image(model, image, 16)
    assert out.size == (30, 20)
    if mode in ("RGBA", "LA"):
        assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    else:
        assert out.mode == "RGB"
    if mode in ("L", "RGB", "LA"):
        assert np.mean(np.abs(lightness(out) - lightness(image))) < 0.5


def test_a_palette_image_with_a_transparent_colour_keeps_it(model):
    image = Image.fromarray(photo(12, 12)).quantize(8)
    image.info["transparency"] = 0
    out = photos.colorize_image(model, image, 16)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3] == 0, np.asarray(image) == 0)


@pytest.mark.slow
def test_every_preset_architecture_colorizes_at_its_size():
    # CIFAR-10 divides by 16 at 32 pixels, Places365 by 128 at 256: an odd photo is padded to fit.
    for preset, size in (("cifar10", 32), ("places365", 256)):
        config = Architecture("gan", PRESETS[preset]["encoder"], PRESETS[preset]["dropout_layers"], size)
        model = ColorizationModel(config, TrainingConfig())
        out = photos.colorize_image(model, Image.fromarray(photo(300, 17)), size)
        assert out.size == (17, 300)


# ---------------------------------------------------------------------------- colorize.py
def write(path, rgb, **save):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **save)
    return path


def test_every_format_and_mode_in_a_folder(checkpoint, tmp_path, capsys):
    src, rgb = tmp_path / "in", photo(20, 30)
    write(src / "a.jpg", rgb)
    write(src / "b.JPEG", rgb)
    write(src / "c.png", rgb)
    write(src / "d.BMP", rgb)
    write(src / "e.tif", rgb)
    write(src / "f.TIFF", rgb)
    write(src / "g.webp", rgb, lossless=True)
    Image.fromarray(rgb).convert("P").save(src / "h.png")
    Image.fromarray(rgb).convert("L").save(src / "i.png")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(src / "j.png")  # I;16
    Image.fromarray(rgb).convert("CMYK").save(src / "k.jpg")
    Image.fromarray(rgb).convert("LA").save(src / "l.png")
    (src / "notes.txt").write_text("not an image, and not a photo name")
    status, summary, err = run(capsys, src, "--checkpoint", checkpoint, "--output", tmp_path / "out")
    assert status == 0 and err == []
    assert summary.startswith("12 colorized, 0 skipped, 0 failed")
    for name in "abcdefghijkl":
        with Image.open(tmp_path / "out" / f"{name}.png") as out:
            assert out.format == "PNG" and out.size == (30, 20)
            assert out.mode == ("RGBA" if name == "l" else "RGB")


def test_rgba_alpha_survives_the_file_round_trip(checkpoint, tmp_path, capsys):
    rgba = np.dstack([photo(20, 30), np.arange(600, dtype=np.uint8).reshape(20, 30)])
    write(tmp_path / "x.png", rgba)
    assert run(capsys, tmp_path / "x.png", "--checkpoint", checkpoint, "--output", tmp_path / "out")[0] == 0
    with Image.open(tmp_path / "out" / "x.png") as out:
        assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])


def test_exif_orientation_turns_the_photo_the_right_way_up(checkpoint, tmp_path, capsys):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:10] = 230  # bright top as stored; orientation 6 = turn 90 degrees clockwise to view
    exif = Image.Exif()
    exif[0x0112] = 6
    write(tmp_path / "phone.jpg", stored, exif=exif.tobytes(), quality=95)
    assert run(capsys, tmp_path / "phone.jpg", "--checkpoint", checkpoint, "--output", tmp_path)[0] == 0
    with Image.open(tmp_path / "phone.png") as out:
        L = lightness(out)
    assert L.shape == (40, 20)
    assert L[:, 12:].mean() > 80 and L[:, :8].mean() < 10  # the bright side is now on the right


@pytest.mark.parametrize("fmt, pil_format",
                         [("jpg", "JPEG"), ("webp", "WEBP"), ("tif", "TIFF"), ("png", "PNG")])
def test_output_formats_and_side_by_side(checkpoint, tmp_path, capsys, fmt, pil_format):
    rgb = photo(20, 30)
    write(tmp_path / "in" / "x.png", rgb)
    status, summary, _ = run(capsys, tmp_path / "in", "--checkpoint", checkpoint,
                             "--output", tmp_path / "out", "--format", fmt, "--side-by-side")
    assert status == 0 and summary.startswith("1 colorized")
    with Image.open(tmp_path / "out" / f"x.{fmt}") as out, \
            Image.open(tmp_path / "out" / f"x_side_by_side.{fmt}") as pair:
        assert out.format == pair.format == pil_format
        assert out.size == (30, 20) and pair.size == (60, 20)
        if fmt in ("png", "tif"):  # lossless: the pair is exactly [input | colorized]
            assert np.array_equal(np.asarray(pair)[:, :30], rgb)
            assert np.array_equal(np.asarray(pair)[:, 30:], np.asarray(out))


def test_side_by_side_shows_a_16_bit_input_scaled_to_8_bits(model):
    grey = np.linspace(0, 65535, 20 * 30).reshape(20, 30).astype(np.uint16)
    image = Image.fromarray(grey)
    pair = np.asarray(photos.side_by_side(image, photos.colorize_image(model, image, 16)))
    assert pair.shape == (20, 60, 3)
    assert np.array_equal(pair[:, :30, 1], np.round(grey / 257).astype(np.uint8))


def test_mixed_precision_inference_gives_nearly_the_float32_colours(checkpoint, tmp_path, capsys):
    write(tmp_path / "x.png", photo(40, 60))
    outputs = {}
    for flag in ("--no-mixed-precision", "--mixed-precision"):
        status, summary, _ = run(capsys, tmp_path / "x.png", "--checkpoint", checkpoint,
                                 "--output", tmp_path / flag, flag)
        assert status == 0 and summary.startswith("1 colorized")
        outputs[flag] = np.asarray(Image.open(tmp_path / flag / "x.png")).astype(int)
    difference = np.abs(outputs["--no-mixed-precision"] - outputs["--mixed-precision"])
    assert 0 < difference.max() <= 6 and difference.mean() < 1, (difference.max(), difference.mean())


@pytest.mark.slow
def test_a_large_photo_keeps_its_full_resolution(checkpoint, tmp_path, capsys):
    rgb = np.kron(photo(200, 300), np.ones((10, 10, 1), np.uint8))  # 3000 x 2000, compresses well
    write(tmp_path / "big.jpg", rgb, quality=95)
    assert run(capsys, tmp_path / "big.jpg", "--checkpoint", checkpoint, "--output", tmp_path / "out")[0] == 0
    with Image.open(tmp_path / "big.jpg") as image, Image.open(tmp_path / "out" / "big.png") as out:
        assert out.size == (3000, 2000)
        assert np.mean(np.abs(lightness(out) - lightness(image))) < 0.5


def test_broken_files_are_reported_and_the_others_colorized(checkpoint, tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "good.png", photo(20, 30))
    write(src / "sub" / "good.jpg", photo(20, 30))
    jpeg = (src / "sub" / "good.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 3])
    (src / "letter.png").write_text("Dear reader, this is not a PNG.")
    status, summary, err = run(capsys, src, "--checkpoint", checkpoint, "--output", tmp_path / "out")
    assert status == 1
    assert summary.startswith("2 colorized, 0 skipped, 2 failed")
    assert len(err) == 2
    assert any("truncated.jpg" in line for line in err) and any("letter.png" in line for line in err)
    assert (tmp_path / "out" / "good.png").is_file() and (tmp_path / "out" / "sub" / "good.png").is_file()


def test_an_explicit_file_that_is_no_image_is_reported(checkpoint, tmp_path, capsys):
    write(tmp_path / "x.png", photo(20, 30))
    (tmp_path / "notes.txt").write_text("a shopping list")
    status, summary, err = run(capsys, tmp_path / "x.png", tmp_path / "notes.txt",
                               "--checkpoint", checkpoint, "--output", tmp_path / "out")
    assert (status, summary) == (1, "1 colorized, 0 skipped, 1 failed")
    assert len(err) == 1 and err[0].startswith(f"{tmp_path / 'notes.txt'}: cannot read it as an image")


def test_glob_patterns_mirror_the_folders_below_their_wildcard(checkpoint, tmp_path, capsys):
    src = tmp_path / "in"
    for path in ("a.png", "b/c.png", "b/d.jpg", ".hidden/e.png"):
        write(src / path, photo(20, 30))
    status, summary, _ = run(capsys, src / "**" / "*.png", "--checkpoint", checkpoint,
                             "--output", tmp_path / "out")
    assert (status, summary) == (0, "2 colorized, 0 skipped, 0 failed")
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["a.png", "b/c.png"]  # hidden folders are not photos


def test_a_folder_whose_name_looks_like_a_pattern_is_a_folder(checkpoint, tmp_path, capsys):
    write(tmp_path / "in [2019]" / "a.png", photo(20, 30))
    status, summary, _ = run(capsys, tmp_path / "in [2019]", "--checkpoint", checkpoint,
                             "--output", tmp_path / "out")
    assert (status, summary) == (0, "1 colorized, 0 skipped, 0 failed")
    assert (tmp_path / "out" / "a.png").is_file()


def test_same_names_do_not_collide(checkpoint, tmp_path, capsys):
    src = tmp_path / "in"
    for path in ("x.png", "x.jpg", "a/y.png", "b/y.png"):
        write(src / path, photo(20, 30))
    assert run(capsys, src, "--checkpoint", checkpoint, "--output", tmp_path / "out")[0] == 0
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["a/y.png", "b/y.png", "x_jpg.png", "x_png.png"]


def test_an_output_folder_inside_the_input_folder_is_not_read_back(checkpoint, tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "a.png", photo(20, 30))
    write(src / "b" / "c.jpg", photo(20, 30))
    args = (src, "--checkpoint", checkpoint, "--output", src / "coloured")
    assert run(capsys, *args)[1].startswith("2 colorized, 0 skipped, 0 failed")
    assert run(capsys, *args)[1].startswith("0 colorized, 2 skipped, 0 failed")
    pattern = str(src / "**" / "*.png")
    assert run(capsys, pattern, *args[1:])[1].startswith("0 colorized, 1 skipped, 0 failed")
    # (and the hidden manifest of what colorize.py wrote there)
    assert sorted(p.name for p in (src / "coloured").rglob("*")) == [".colorized", "a.png", "b", "c.png"]


def test_existing_outputs_are_skipped_unless_overwrite(checkpoint, tmp_path, capsys):
    write(tmp_path / "x.jpg", photo(20, 30))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.png").write_bytes(b"earlier result")
    args = (tmp_path / "x.jpg", "--checkpoint", checkpoint, "--output", tmp_path / "out")
    assert run(capsys, *args)[:2] == (0, "0 colorized, 1 skipped, 0 failed")
    assert (tmp_path / "out" / "x.png").read_bytes() == b"earlier result"
    assert run(capsys, *args, "--overwrite")[:2] == (0, "1 colorized, 0 skipped, 0 failed")
    with Image.open(tmp_path / "out" / "x.png") as out:
        assert out.size == (30, 20)


@pytest.mark.parametrize("blocked", ["out/b", "out", "out/b/deeper"])
def test_an_output_folder_that_cannot_be_made_at_any_depth_is_one_line_before_any_work(checkpoint, tmp_path,
                                                                                         capsys, blocked):
    photos_dir = tmp_path / "in"
    for sub in ("a", "b/deeper"):
        write(photos_dir / sub / "x.png", photo(12, 12))
    (tmp_path / "out" / "a").mkdir(parents=True)
    (tmp_path / "out" / "a" / "keep.png").write_bytes(b"a file of the user's")
    # "out": --output itself lies under a file; otherwise a subfolder it would make is a file
    target = tmp_path / ("elsewhere" if blocked == "out" else blocked)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"a file, not a folder")
    output = target / "out" if blocked == "out" else tmp_path / "out"
    status, last, err = run(capsys, photos_dir, "--checkpoint", checkpoint, "--output", output)
    assert status == 1 and len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    assert target.read_bytes() == b"a file, not a folder"
    assert (tmp_path / "out" / "a" / "keep.png").read_bytes() == b"a file of the user's"
    assert not list((tmp_path / "out").rglob("x.png"))  # nothing colorized before the check


def test_an_input_is_never_overwritten(checkpoint, tmp_path, capsys):
    write(tmp_path / "x.png", photo(20, 30))
    write(tmp_path / "y.jpg", photo(20, 30))
    before = (tmp_path / "x.png").read_bytes()
    for extra in ([], ["--overwrite"]):
        status, summary, err = run(capsys, tmp_path, "--checkpoint", checkpoint, "--output", tmp_path, *extra)
        assert status == 1 and "1 failed" in summary
        assert len(err) == 1 and "x.png" in err[0] and "overwrite an input" in err[0]
        assert (tmp_path / "x.png").read_bytes() == before
    assert (tmp_path / "y.png").is_file()


@pytest.mark.parametrize("problem", ["missing", "not_hdf5", "empty_run"])
def test_a_bad_checkpoint_is_one_clear_line(tmp_path, capsys, problem):
    write(tmp_path / "x.png", photo(8, 8))
    bad = {"missing": tmp_path / "nope.h5", "not_hdf5": tmp_path / "x.png",
           "empty_run": tmp_path / "run"}[problem]
    (tmp_path / "run").mkdir()
    status, _, err = run(capsys, tmp_path / "x.png", "--checkpoint", bad, "--output", tmp_path / "out")
    assert status == 1 and len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_no_matching_inputs_is_one_clear_line(checkpoint, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, tmp_path / "empty", tmp_path / "*.jpg", "--checkpoint", checkpoint,
                         "--output", tmp_path / "out")
    assert status == 1 and len(err) == 1 and err[0].startswith("error: no images")


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 5, 4), (37, 1, 3), (1, 3000, 3), (700, 1100, 3), (600, 900, 4)])
def test_png_writer_round_trips_bit_for_bit_through_pillow(shape):
    # The larger shapes are deflated in several pieces joined into one stream.
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    pixels[: shape[0] // 2] //= 16  # smooth and noisy parts: filtered bytes of every kind
    image = Image.open(io.BytesIO(photo_io.png_bytes(pixels)))
    image.load()  # checks every chunk's CRC and the zlib checksum
    assert image.format == "PNG" and image.mode == {3: "RGB", 4: "RGBA"}[shape[2]]
    assert np.array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("channels, dtype, scale", [(3, np.uint8, 255), (1, np.uint8, 255), (1, np.uint16, 65535)])
def test_table_lightness_equals_the_lab_conversion(channels, dtype, scale):
    pixels = np.random.default_rng(0).integers(0, scale + 1, (40, 50, channels)).astype(dtype)
    rgb = np.broadcast_to(pixels.astype(np.float32) / scale, (40, 50, 3))
    expected = color.rgb_to_lab(rgb).numpy()[..., :1]
    L = photos.lightness(pixels, scale)
    assert L.shape == (40, 50, 1) and L.dtype == np.float32
    assert np.abs(L - expected).max() < 1e-4


class LightnessRuleModel:
    """Predicts a colour from the lightness alone, exactly, at the network's scale: orange where
    bright, blue where dark (normalised L* above or below 0)."""
    architecture = Architecture(STANDALONE, [(8, 1)], 0, 16)

    def predict_ab(self, L):
        bright = tf.cast(L > 0, tf.float32)
        return bright * tf.constant([0.25, 0.5]) + (1 - bright) * tf.constant([0.1, -0.35])


def test_guided_upsampling_puts_the_colour_edge_on_the_lightness_edge():
    # A 1000x600 photo, dark blue left of column 503, bright orange from it on: the network sees it
    # at 64 pixels, where the edge falls inside a pixel and the colours of both sides mix.
    L = np.where(np.arange(1000) < 503, 35.0, 75.0)[None, :, None].repeat(600, 0)
    ab = np.where(L > 50, [27.5, 55.0], [11.0, -38.5])
    from skimage.color import lab2rgb
    rgb = np.round(lab2rgb(np.concatenate([L, ab], -1)) * 255).astype(np.uint8)
    errors = {}
    for upsampling in ("bilinear", "guided"):
        out = np.asarray(photos.colorize_image(LightnessRuleModel(), Image.fromarray(rgb), 64, upsampling))
        lab = rgb2lab(out)
        assert np.abs(lab[..., 0] - rgb2lab(rgb)[..., 0]).max() < 0.5  # the photo's own lightness, both ways
        by_column = np.abs(lab[..., 1:] - rgb2lab(rgb)[..., 1:]).mean(axis=(0, 2))
        errors[upsampling] = by_column.max(), by_column[503 - 24:503 + 24].mean()  # worst; 2.5 network pixels
    assert errors["bilinear"][0] > 20  # the plain resize smears the colours across the edge
    assert errors["guided"][0] < errors["bilinear"][0] / 3 and errors["guided"][1] < errors["bilinear"][1], errors


def test_upsampling_must_be_known(model):
    with pytest.raises(ValueError, match="unknown upsampling 'nearest'"):
        photos.colorize_image(model, Image.fromarray(photo(20, 20)), 16, "nearest")


@pytest.mark.slow
def test_the_figure_of_photos_without_a_colour_truth_has_no_original_column(checkpoint, tmp_path, capsys):
    from tools import figures
    from tests.helpers import write_images
    photos_folder = write_images(tmp_path / "photos", 2, size=(30, 40))
    side, gap = 224, 2  # figures.photo_grid's cells
    grids = {}
    for extra, columns in (([], 3), (["--no-truth"], 2)):
        out = tmp_path / f"grid{columns}.png"
        figures.main([str(out), str(photos_folder), "--checkpoint", str(checkpoint), "--per-row", "1", *extra])
        grids[columns] = np.asarray(Image.open(out))
        assert grids[columns].shape == (2 * (side + gap) + gap, columns * (side + gap) + 2 * gap, 3)

    def column(grid, j):
        return grid[:, gap + j * (side + gap):gap + j * (side + gap) + side]
    # [grey | original | colorized] and [grey | colorized]: the same grey, the same colours
    assert np.array_equal(column(grids[2], 0), column(grids[3], 0))
    assert np.array_equal(column(grids[2], 1), column(grids[3], 2))
    assert not np.array_equal(column(grids[3], 1), column(grids[3], 2))
