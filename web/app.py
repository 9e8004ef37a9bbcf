"""The web application of serve.py: the colorize page and the paper's visual Turing test. The
pages are templates in web/templates/ (Jinja2, escaped), their scripts and styles in web/static/.

- `/`: drop or pick photos; each comes back colorized at full resolution beside the original, with
  a link to download the PNG. The same code and the same pixels as `colorize.py` (its PNG bytes).
- `/turing`: the visual Turing test of the original repository. Test images, real or colorized by
  the model, one at a time in a fixed seeded order; the viewer answers real or fake; the page
  reports the fooling rate (colorized images taken for real) with a 95 % Wilson interval. Answers
  are appended to `turing.csv` in the run folder; entering the same session name resumes.

Bad uploads (not an image, empty, too many bytes or pixels) get a message and the server carries on.
"""
import csv
import fcntl
import io
import math
import os
import re
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from data.datasets import load_source, stored_dataset, stored_dataset_path
from data.errors import DatasetError
from data.limits import pixel_problem
from data.pipeline import eval_batches
from evaluation import scoring
from inference import photo_io, photos
from inference.loading import load_for_inference
from models import checkpoint as ckpt

WEB = Path(__file__).resolve().parent  # the pages' templates and their static files
TURING_FIELDS = ("session", "index", "truth", "answer", "seconds", "time")
SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")  # a name a spreadsheet shows as text
MAX_SECONDS = 24 * 3600.0  # an answer's time on the page; longer is a clock gone wrong
MAX_TURING_ROWS = 100_000  # turing.csv: each answer re-reads it; any session name can add rows


def check_session(session):
    """The Turing test's session name, or BadUpload with what a name may be."""
    if not SESSION_NAME.fullmatch(session or ""):
        raise BadUpload(400, "a session name is 1-64 letters, digits, spaces, dots, dashes or underscores, "
                             "starting with a letter or digit")
    return session


class BadUpload(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def wilson_interval(k, n, z=1.959964):
    """95 % interval of a proportion k / n (Wilson score)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class Colorizer:
    """The model and colorize.py's photo path, one photo at a time (bounded memory)."""

    def __init__(self, model, max_bytes, max_pixels):
        self.model, self.max_bytes, self.max_pixels = model, max_bytes, max_pixels
        self.size = model.architecture.image_size
        self.lock = threading.Lock()

    def png(self, data, name="upload"):
        if not data:
            raise BadUpload(400, f"{name} is empty (0 bytes)")
        if len(data) > self.max_bytes:
            raise BadUpload(413, f"{name} is {len(data) / 1e6:.1f} MB, over the limit of {self.max_bytes / 1e6:g} MB")
        try:
            with Image.open(io.BytesIO(data)) as probe:  # the header only: no pixels decoded yet
                width, height = probe.size
        except Exception:  # Pillow raises many types; all mean "not an image it can read"
            raise BadUpload(400, f"{name} is not an image (JPEG, PNG, BMP, TIFF, WebP...)") from None
        problem = pixel_problem(width, height, self.max_pixels / 1e6, self.size)
        if problem:
            raise BadUpload(413, f"{name} {problem}")
        try:
            image = photos.read_image(io.BytesIO(data), self.max_pixels / 1e6, self.size)
        except photos.FileError as e:
            raise BadUpload(400, f"{name}: {e}") from None
        with self.lock:
            colorized = photos.colorize_image(self.model, image, self.size)
        return photo_io.png_bytes(np.asarray(colorized))


class TuringTest:
    """Test images, each shown once as itself or as the model colorized it, in a seeded order."""

    def __init__(self, model, options, run_dir, count, seed):
        self.model, self.options, self.count, self.seed = model, options, count, seed
        self.csv = Path(run_dir) / "turing.csv"
        self.lock, self.preparing = threading.Lock(), threading.Lock()
        self.items = None

    def _prepare(self):
        with self.preparing:
            if self.items is None:
                self.items = self._choose()
        return self.items

    def _choose(self):
        source = load_source(stored_dataset(self.options, self.csv.parent),
                             stored_dataset_path(self.options, self.csv.parent), "test",
                             self.options["image_size"], test_fraction=self.options.get("test_fraction"))
        rng = np.random.default_rng(self.seed)
        chosen = np.sort(rng.choice(len(source), min(self.count, len(source)), replace=False))
        batch = next(iter(eval_batches(source.subset(chosen), len(chosen))), None)
        if batch is None:  # every chosen file undecodable or grey: as unusable as a missing dataset (503)
            raise DatasetError(f"none of the {len(chosen)} test images chosen is a usable colour image "
                               f"(undecodable or grey; the server's log names them)")
        rgb, L, _ = batch
        fakes = scoring.to_uint8(scoring.colorize(self.model, L))
        truth = rng.permutation(np.arange(len(rgb)) % 2 == 0)  # half real, half colorized
        order = rng.permutation(len(rgb))
        return [("real", rgb.numpy()[i]) if truth[i] else ("fake", fakes[i]) for i in order]

    def image(self, index):
        return photo_io.png_bytes(self._prepare()[index][1])

    def answers(self, session):
        check_session(session)
        if not self.csv.exists():
            return []
        with open(self.csv, newline="") as f:  # a row cut short (a crash, an old full disk) is no answer
            return [row for row in csv.DictReader(f) if row.get("session") == session
                    and str(row.get("index")).isdigit() and row.get("truth") in ("real", "fake")
                    and row.get("answer") in ("real", "fake")]

    def state(self, session):
        items, answers = self._prepare(), self.answers(session)
        done = {int(a["index"]) for a in answers}
        fakes = [a for a in answers if a["truth"] == "fake"]
        fooled = sum(a["answer"] == "real" for a in fakes)
        low, high = wilson_interval(fooled, len(fakes))
        following = next((i for i in range(len(items)) if i not in done), None)
        return {"session": session, "total": len(items), "answered": len(done), "next": following,
                "fakes_seen": len(fakes), "fooled": fooled,
                "fooling_rate": fooled / len(fakes) if fakes else None, "interval": [low, high],
                "correct": sum(a["truth"] == a["answer"] for a in answers)}

    def answer(self, session, index, answer, seconds):
        items = self._prepare()
        check_session(session)
        if not 0 <= index < len(items) or answer not in ("real", "fake"):
            raise BadUpload(400, "an answer is an index of the test and 'real' or 'fake'")
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS):
            raise BadUpload(400, f"an answer's seconds are between 0 and {MAX_SECONDS:g}")
        row = {"session": session, "index": index, "truth": items[index][0], "answer": answer,
               "seconds": round(seconds, 2), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        # A thread lock for this server, an exclusive file lock for any other process on the file:
        # two servers on one run folder neither lose nor interleave answers.
        try:
            with self.lock, open(self.csv, "a+", newline="") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                text = f.read()
                rows = list(csv.DictReader(io.StringIO(text)))
                if len(rows) >= MAX_TURING_ROWS:
                    raise BadUpload(507, f"{self.csv.name} holds {len(rows):,} answers, its limit: move it away "
                                         f"to start a new record; this answer was not counted")
                if not any(r.get("session") == session and r.get("index") == str(index) for r in rows):
                    end = f.tell()
                    try:
                        if not text.endswith("\n") and text:
                            f.write("\r\n")  # a row a killed server cut short stays apart from this one
                        writer = csv.DictWriter(f, TURING_FIELDS)
                        if end == 0:
                            writer.writeheader()
                        writer.writerow(row)  # each image once per session
                        f.flush()
                        os.fsync(f.fileno())
                    except OSError:
                        f.truncate(end)  # no half row for the next answer to be joined to
                        raise
        except OSError as e:
            raise BadUpload(507, f"the answer could not be recorded in {self.csv.name} ({e.strerror or e}); "
                                 f"it was not counted, answer again when the disk is fixed") from None
        return self.state(session)


def create_app(checkpoint, max_bytes=25e6, max_pixels=50e6, turing_images=40, seed=0, mixed_precision=None,
               weights="ema", dataset_path=None):
    from fastapi import FastAPI, Form, Request, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    path = ckpt.resolve_checkpoint(checkpoint)
    model, options, _ = load_for_inference(path, mixed_precision, weights=weights)
    if dataset_path:  # the Turing test's images from another place than where the model was trained
        options = {**options, "dataset_path": str(Path(dataset_path).resolve())}
    colorizer = Colorizer(model, max_bytes, max_pixels)
    turing = TuringTest(model, options, path.parent, turing_images, seed)
    app = FastAPI(title="Image colorization")
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    pages = Jinja2Templates(directory=WEB / "templates")  # autoescaped: a name from a checkpoint is text

    @app.middleware("http")
    async def refuse_large_bodies(request, call_next):  # before the body is read at all
        if request.method != "POST":
            return await call_next(request)
        length = request.headers.get("content-length", "")
        if not length.isdigit():  # a chunked body could be any size
            return JSONResponse({"detail": "an upload must say its length (Content-Length)"}, status_code=411)
        if request.url.path == "/api/colorize" and int(length) > max_bytes + 1e6:
            return JSONResponse({"detail": f"the upload is {int(length) / 1e6:.1f} MB, over the limit of "
                                           f"{max_bytes / 1e6:g} MB"}, status_code=413)
        if request.url.path.startswith("/api/turing/") and int(length) > 10_000:  # an answer is a few fields
            return JSONResponse({"detail": "an answer is a few short fields"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(BadUpload)
    def bad_upload(request, error):
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    @app.exception_handler(DatasetError)
    def no_data(request, error):
        return JSONResponse({"detail": f"the Turing test needs the test images: {error}"}, status_code=503)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        network = f"{options.get('model', 'generator')} on {options.get('dataset', 'photos')}"
        return pages.TemplateResponse(request, "colorize.html", {"network": network})

    @app.post("/api/colorize")
    def colorize_upload(file: UploadFile):
        data = file.file.read(int(max_bytes) + 1)  # never more than the limit in memory
        png = colorizer.png(data, file.filename or "upload")
        return Response(png, media_type="image/png")

    @app.get("/turing", response_class=HTMLResponse)
    def turing_page(request: Request):
        return pages.TemplateResponse(request, "turing.html")

    @app.get("/api/turing/{session}")
    def turing_state(session: str):
        return turing.state(session)

    @app.get("/api/turing/image/{index}")
    def turing_image(index: int):
        if not 0 <= index < len(turing._prepare()):
            raise BadUpload(404, "no such image")
        return Response(turing.image(index), media_type="image/png")

    @app.post("/api/turing/{session}")
    def turing_answer(session: str, index: int = Form(...), answer: str = Form(...), seconds: float = Form(0.0)):
        return turing.answer(session, index, answer, seconds)

    return app
