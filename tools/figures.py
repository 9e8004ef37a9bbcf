"""The documents' photo figures: grids of photos colorized at full resolution, crops of the two
upsamplings, and a screenshot of serve.py's page.

    python tools/figures.py docs/photos.png PHOTO_OR_FOLDER... [--checkpoint C] [--page | --upsampling | --no-truth]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's root: python tools/figures.py

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from evaluation.plots import save_image, triplet_grid  # noqa: E402


def photo_grid(paths, model, size, side=224, per_row=2, truth=True):
    """uint8 grid of photos as [grey | original | colorized] (truth=False: [grey | colorized]), each
    colorized at its full resolution as colorize.py does (the network sees it at `size`), then shown
    at side x side."""
    from inference import photos  # TensorFlow: only here

    def square(image):
        image = image.convert("RGB")
        crop = min(image.size)
        left, top = (image.width - crop) // 2, (image.height - crop) // 2
        return np.asarray(image.crop((left, top, left + crop, top + crop)).resize((side, side), Image.LANCZOS))

    originals, colorized = [], []
    for path in paths:
        image = photos.read_image(path)
        originals.append(square(image))
        colorized.append(square(photos.colorize_image(model, image, size)))
    return triplet_grid(originals, [colorized], per_row=per_row, truth=truth)


def busiest_crop(grey, crop):
    """(top, left) of the crop x crop window of a 2-D image with the most lightness edges."""
    from scipy import ndimage
    edges = np.hypot(ndimage.sobel(grey.astype(np.float32), 0), ndimage.sobel(grey.astype(np.float32), 1))
    density = ndimage.uniform_filter(edges, crop, mode="constant")
    half = crop // 2
    inner = density[half:grey.shape[0] - half + 1, half:grey.shape[1] - half + 1]
    top, left = np.unravel_index(np.argmax(inner), inner.shape)
    return int(top), int(left)


def upsampling_crops(paths, model, size, crop=160, zoom=2):
    """uint8 grid, a photo per row: [original | colours resized bilinearly | colours guided by the
    lightness] on the crop x crop window of the photo's full resolution with the most edges,
    enlarged `zoom` times (nearest), where the colours of the network's scale meet the photo's."""
    from inference import photos  # TensorFlow: only here
    rows = []
    for path in paths:
        image = photos.read_image(path).convert("RGB")
        grey = np.asarray(image.convert("L"))
        top, left = busiest_crop(grey, min(crop, *grey.shape))
        window = (left, top, left + min(crop, image.width), top + min(crop, image.height))
        cells = [image] + [
            photos.colorize_image(model, image, size, upsampling) for upsampling in ("bilinear", "guided")]
        cells = [np.asarray(c.convert("RGB").crop(window).resize((zoom * (window[2] - window[0]),
                                                                  zoom * (window[3] - window[1])), Image.NEAREST))
                 for c in cells]
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells], 1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def page_screenshot(output, paths, checkpoint, width=1000):
    """A screenshot of serve.py's colorize page after these photos were dropped on it: the server
    in this process on a free local port, the page in Debian's chromium (playwright)."""
    import shutil
    import socket
    import threading
    import time

    import uvicorn
    from playwright.sync_api import sync_playwright

    from web.app import create_app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(checkpoint), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": width, "height": 700})
            page.goto(f"http://127.0.0.1:{port}/")
            page.set_input_files("#files", [str(path) for path in paths])
            page.wait_for_function(f"document.querySelectorAll('.result.done').length == {len(paths)}",
                                   timeout=300000)
            page.screenshot(path=str(output), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join()


def main(argv=None):
    """python tools/figures.py photos.png PHOTO... [--checkpoint C] [--sample N --seed S]: a photo_grid of
    the given photos (folders: N of their photos drawn with seed S), by the shipped model by default;
    --page: a screenshot of serve.py's page with them dropped on it instead."""
    from options import SHIPPED_MODEL, Parser
    p = Parser(description="A grid of photos [grey | original | colorized].")
    p.add_argument("output")
    p.add_argument("inputs", nargs="+", help="photos, or folders to draw --sample photos from")
    p.add_argument("--checkpoint", default=str(SHIPPED_MODEL))
    p.add_argument("--sample", type=int, default=4, help="photos drawn from each folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-row", type=int, default=2)
    p.add_argument("--page", action="store_true", help="a screenshot of serve.py's page (chromium)")
    p.add_argument("--no-truth", action="store_true",
                   help="photos without a colour truth (old photographs): [grey | colorized]")
    p.add_argument("--upsampling", action="store_true",
                   help="[original | bilinear | guided] crops at full resolution where the photo has the most edges")
    opt = p.parse_args(argv)
    from data.image_files import find_images
    from inference.loading import load_for_inference
    paths = []
    for given in map(Path, opt.inputs):
        found = sorted(find_images(given)) if given.is_dir() else [given]
        chosen = np.random.default_rng(opt.seed).choice(len(found), min(opt.sample, len(found)), replace=False)
        paths += [found[i] for i in sorted(chosen)] if given.is_dir() else found
    if opt.page:
        page_screenshot(opt.output, paths, opt.checkpoint)
        print(f"{opt.output}: {', '.join(str(p) for p in paths)}")
        return
    model = load_for_inference(opt.checkpoint)[0]
    if opt.upsampling:
        save_image(upsampling_crops(paths, model, model.architecture.image_size), opt.output)
        print(f"{opt.output}: {', '.join(str(p) for p in paths)}")
        return
    save_image(photo_grid(paths, model, model.architecture.image_size, per_row=opt.per_row, truth=not opt.no_truth),
               opt.output)
    print(f"{opt.output}: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    from util.quiet import quiet_tensorflow
    from util.script import start_script
    start_script()
    quiet_tensorflow()
    main()
