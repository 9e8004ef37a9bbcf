"""Colorize your own photos, at their full resolution, with a trained checkpoint (the command line;
the photo work is inference/photos.py's, the writing inference/photo_io.py's).

    python colorize.py photos/ old/*.jpg scan.tif --checkpoint checkpoints/places365_gan --output coloured/

The network sees each photo at the scale it was trained at (shorter side --size, by default the
checkpoint's image size) and predicts a*b*; those colours are brought back to the full photo, guided
by its lightness so that they stop at its edges (--upsampling), and joined with the photo's own
full-resolution lightness, so the output keeps every detail of the input.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

from options import parse_colorize_options
from util.quiet import quiet_tensorflow
from util.script import start_script

if __name__ == "__main__":
    start_script()
    parse_colorize_options()  # --help and bad options answer before TensorFlow is imported
    quiet_tensorflow()

from tqdm import tqdm  # noqa: E402

from data.image_files import PHOTO_EXTENSIONS
from models import checkpoint as ckpt
from inference.loading import load_for_inference
from inference.photo_io import FORMATS, save
from inference.photos import FileError, colorize_image, read_image, side_by_side
from util import atomic

parse_options = parse_colorize_options


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
    return root, sorted(f for f in files if f.is_file() and f.suffix.lower() in PHOTO_EXTENSIONS
                        and not any(p.startswith(".") for p in f.relative_to(root).parts))


MANIFEST = ".colorized"  # in --output: the files colorize.py wrote there, one relative path a line
# A name holding a line break, or bytes that are not UTF-8, is written as a JSON string (escaped);
# plain names as they are, as earlier versions wrote them all.
_PLAIN_NAME = re.compile(r'[^"\n\r\ud800-\udfff]+')


def written_before(output):
    """The files earlier runs wrote into `output` (resolved paths), from its manifest."""
    try:
        lines = (output / MANIFEST).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return set()
    return {(output / manifest_name(line)).resolve() for line in lines if line.strip()}


def manifest_line(name):
    return name if _PLAIN_NAME.fullmatch(name) else json.dumps(name)


def manifest_name(line):
    try:
        return json.loads(line) if line.startswith('"') else line
    except ValueError:  # a line cut by a crash names no file: harmless
        return line


def remember_outputs(output, paths):
    """Appends `paths` to the manifest of `output` (a line cut by a crash names no file: harmless)."""
    output = output.resolve()
    with open(output / MANIFEST, "a", encoding="utf-8") as f:
        f.write("".join(f"{manifest_line(p.resolve().relative_to(output).as_posix())}\n" for p in paths))


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


def colorize_file(model, source, dest, opt, size, protected):
    """'colorized' or 'skipped' (every output exists already); FileError for a failure."""
    fmt, outputs = FORMATS[opt.format], [dest]
    if opt.side_by_side:
        outputs.append(dest.with_name(f"{dest.stem}_side_by_side{dest.suffix}"))
    if any(path.resolve() in protected for path in outputs):
        raise FileError("its output would overwrite an input image; choose another --output or --format")
    if not opt.overwrite and all(path.exists() for path in outputs):
        return "skipped"
    image = read_image(source, opt.max_megapixels, size)
    colorized = colorize_image(model, image, size, opt.upsampling)
    for path in outputs:
        if opt.overwrite or not path.exists():
            save(colorized if path == dest else side_by_side(image, colorized), path, fmt)
    try:
        remember_outputs(Path(opt.output), outputs)
    except OSError as e:  # a full disk: a rerun would take this output for an input
        raise FileError(f"written, but not recorded in {Path(opt.output) / MANIFEST} ({e.strerror or e})") from None
    return "colorized"


def main(argv=None):
    opt = parse_options(argv)
    output = Path(opt.output)
    inputs, misses = find_inputs(opt.inputs, output)
    if not inputs:
        print(f"error: no images ({' '.join(PHOTO_EXTENSIONS)}) in {' '.join(opt.inputs)}", file=sys.stderr)
        return 1
    for pattern in misses:
        print(f"warning: no images match {pattern}", file=sys.stderr)
    try:
        model, _, _ = load_for_inference(opt.checkpoint, opt.mixed_precision, weights=opt.weights)
    except ckpt.CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    size = opt.size or model.architecture.image_size
    if size is None:  # a generator.keras without its export.json
        print(f"error: {opt.checkpoint} does not say the size it was trained at (no export.json beside it); "
              f"pass --size", file=sys.stderr)
        return 1
    jobs = list(zip([source for source, _ in inputs], destinations(inputs, output, f".{opt.format}")))
    try:  # every folder an output goes into, at any depth, made and tried before any work
        for folder in sorted({dest.parent for _, dest in jobs}):
            atomic.writable_folder(folder)
            atomic.remove_temporaries(folder, orphans_only=True)  # of a colorize.py killed mid-save
    except atomic.NotWritable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Colorizing {len(inputs)} images into {output} with {opt.checkpoint} (the network sees them at {size} pixels)")
    protected = {source.resolve() for source, _ in inputs}
    counts = Counter()
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
