"""serve.py: the colorize page and the visual Turing test, through HTTP and in a real browser
(playwright driving Debian's chromium; those tests skip where no browser is installed)."""
import concurrent.futures
import csv
import io
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

import colorize
from web import app as web_app
from tests.conftest import ROOT
from tests.helpers import free_ports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = ROOT / "docs"


def png_file(path, size=(30, 20), seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def server(checkpoint):
    """serve.py in its own process on 127.0.0.1, as a user starts it."""
    port, = free_ports(1)
    process = subprocess.Popen([sys.executable, "serve.py", "--checkpoint", str(checkpoint.parent), "--port",
                                str(port), "--max-megabytes", "1", "--max-megapixels", "0.25",
                                "--turing-images", "10"], cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    import httpx
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        assert process.poll() is None, process.stderr.read()[-2000:]
    yield url, process
    process.terminate()
    process.wait(timeout=30)


def post(url, name, data):
    import httpx
    return httpx.post(url + "/api/colorize", files={"file": (name, data)}, timeout=120)


def colorize_py_png(checkpoint, source, tmp_path):
    out = tmp_path / "by_colorize_py"
    assert colorize.main([str(source), "--checkpoint", str(checkpoint), "--output", str(out), "--no-progress"]) == 0
    return (out / (source.stem + ".png")).read_bytes()


def test_an_upload_comes_back_with_colorize_py_s_bytes_and_bad_ones_get_a_message(server, checkpoint, tmp_path):
    url, process = server
    photo = png_file(tmp_path / "photo.png")
    response = post(url, "photo.png", photo.read_bytes())
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content == colorize_py_png(checkpoint, photo, tmp_path)
    cases = [("notes.txt", b"hello", 400, "not an image"), ("empty.png", b"", 400, "empty"),
             ("big.png", bytes(1_200_000), 413, "over the limit of 1 MB")]
    big = io.BytesIO()
    Image.new("L", (1000, 1000)).save(big, "PNG")  # a few kB, a megapixel: over --max-megapixels 0.25
    cases.append(("bomb.png", big.getvalue(), 413, "over the limit of 0.25 (--max-megapixels)"))
    for name, data, status, message in cases:
        response = post(url, name, data)
        assert response.status_code == status and message in response.json()["detail"], (name, response.text)
    assert post(url, "photo.png", photo.read_bytes()).status_code == 200  # still serving
    assert process.poll() is None


def rss_megabytes(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def raw(url, request, timeout=20):
    """The first line of the server's answer to raw request bytes ('' if it closed without one)."""
    import socket
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        try:
            return s.makefile("rb").readline().decode(errors="replace").strip()
        except (ConnectionError, TimeoutError):
            return ""


@pytest.mark.slow
def test_the_server_keeps_answering_through_slow_uploads_huge_requests_and_a_flood_of_answers(server, checkpoint,
                                                                                                tmp_path):
    import socket

    import httpx
    url, process = server
    host, port = url.removeprefix("http://").split(":")
    photo = png_file(tmp_path / "photo.png").read_bytes()
    post(url, "warm.png", photo)
    before = rss_megabytes(process.pid)
    # 50 uploads that send their headers and then trickle their bodies.
    head = (b"POST /api/colorize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 500000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"slow.png\"\r\n\r\n")
    slow = [socket.create_connection((host, int(port)), timeout=20) for _ in range(50)]
    for s in slow:
        s.sendall(head + bytes(1000))
    assert httpx.get(url + "/", timeout=20).status_code == 200  # the page answers
    assert post(url, "photo.png", photo).status_code == 200  # and so does a real upload
    for s in slow:
        s.sendall(bytes(1000))
        s.close()
    # Oversized headers, a huge declared body, a body of unknown length, an oversized answer.
    assert raw(url, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")[9:12] in ("400", "431", "")
    assert raw(url, b"POST /api/colorize HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")[9:12] == "413"
    assert raw(url, b"POST /api/colorize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n")[9:12] == "411"
    assert httpx.post(url + "/api/turing/flood", data={"index": "0", "answer": "real", "x": "y" * 20_000},
                      timeout=20).status_code == 413
    # A flood of Turing answers: 300 from 30 threads, each image of 10 sessions three times.
    def answer(i):
        return httpx.post(url + f"/api/turing/flood-{i % 10}", data={"index": str(i // 10 % 10), "answer": "real",
                                                                     "seconds": "1.5"}, timeout=60).status_code
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(answer, range(300)))
    assert statuses == [200] * 300
    with open(checkpoint.parent / "turing.csv", newline="") as f:
        flood = [(r["session"], r["index"]) for r in csv.DictReader(f) if r["session"].startswith("flood-")]
    assert sorted(flood) == sorted({(f"flood-{s}", str(i)) for s in range(10) for i in range(10)})  # each once
    assert httpx.get(url + "/", timeout=20).status_code == 200
    time.sleep(1)
    assert rss_megabytes(process.pid) < before + 150, (before, rss_megabytes(process.pid))


@pytest.mark.slow
def test_twenty_concurrent_uploads_all_answer_and_memory_returns(server, tmp_path):
    url, process = server
    photos = [png_file(tmp_path / f"p{i}.png", size=(300, 200), seed=i).read_bytes() for i in range(20)]
    post(url, "warm.png", photos[0])
    before = rss_megabytes(process.pid)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:  # a bounded client: 20 at once
        answers = list(pool.map(lambda i: post(url, f"p{i}.png", photos[i]), range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert all(Image.open(io.BytesIO(a.content)).size == (300, 200) for a in answers)
    time.sleep(1)
    after = rss_megabytes(process.pid)
    assert after < before + 150, (before, after)  # one photo at a time: no growth per upload


def test_the_turing_test_records_answers_reports_the_rate_and_resumes(server, checkpoint):
    import httpx
    url, _ = server
    csv_path = checkpoint.parent / "turing.csv"
    state = httpx.get(url + "/api/turing/alice", timeout=120).json()  # the first call colorizes the test's images
    assert state["total"] == 10 and state["answered"] == 0 and state["next"] == 0
    for index in range(4):
        state = httpx.post(url + "/api/turing/alice", data={"index": index, "answer": "real"}).json()
    rows = [r for r in csv.DictReader(open(csv_path)) if r["session"] == "alice"]
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
    fakes = sum(r["truth"] == "fake" for r in rows)
    assert state["fakes_seen"] == fakes and state["fooled"] == fakes  # every fake was called real
    assert httpx.get(url + "/api/turing/alice").json()["next"] == 4  # resumed where it stopped
    again = httpx.post(url + "/api/turing/alice", data={"index": 0, "answer": "fake"}).json()
    assert again["answered"] == 4  # an image is answered once
    assert httpx.post(url + "/api/turing/alice", data={"index": 99, "answer": "real"}).status_code == 400


def turing_on(csv_folder, items=20):
    """A TuringTest whose items are given (no model, no dataset): the record keeping alone."""
    test = web_app.TuringTest(None, {}, csv_folder, items, 0)
    test.items = [("fake" if i % 2 else "real", None) for i in range(items)]
    return test


@pytest.mark.parametrize("session", ["", "=HYPERLINK(\"http://x\")", "+1", "-1", "@a", "a" * 65, "a/b", "a\nb"])
def test_a_turing_session_name_that_is_not_plain_text_is_refused_with_what_a_name_may_be(tmp_path, session):
    test = turing_on(tmp_path)
    with pytest.raises(web_app.BadUpload) as e:
        test.answer(session, 0, "real", 1.0)
    assert e.value.status == 400 and "a session name is 1-64 letters" in str(e.value)
    assert not (tmp_path / "turing.csv").exists()


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -1e300, -1.0, 1e300])
def test_a_turing_answer_with_absurd_seconds_is_refused(tmp_path, seconds):
    with pytest.raises(web_app.BadUpload) as e:
        turing_on(tmp_path).answer("alice", 0, "real", seconds)
    assert e.value.status == 400 and "seconds" in str(e.value)


def test_a_full_turing_record_refuses_new_answers_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(web_app, "MAX_TURING_ROWS", 3)  # any session name adds rows: the file is bounded
    test = turing_on(tmp_path)
    for index in range(3):
        test.answer("alice", index, "real", 1.0)
    with pytest.raises(web_app.BadUpload) as e:
        test.answer("bob", 0, "real", 1.0)
    assert e.value.status == 507 and "holds 3 answers, its limit: move it away" in str(e.value)
    assert len(test.answers("alice")) == 3 and test.answers("bob") == []


def test_an_answer_that_cannot_be_written_is_a_clear_error_not_a_lost_answer(tmp_path):
    test = turing_on(tmp_path / "gone")  # its folder does not exist
    with pytest.raises(web_app.BadUpload) as e:
        test.answer("alice", 0, "real", 1.0)
    assert e.value.status == 507 and "not counted" in str(e.value)


def test_two_servers_on_one_run_folder_lose_and_interleave_no_answer(tmp_path):
    """Two processes append 60 answers each to one turing.csv at once."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_serve import turing_on
        test = turing_on({str(tmp_path)!r}, items=60)
        for i in range(60):
            test.answer(sys.argv[1], i, "real", 0.5)
    """)
    processes = [subprocess.Popen([sys.executable, "-c", code, name], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                                  stderr=subprocess.PIPE, text=True) for name in ("alice", "bob")]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()[-2000:]
    lines = (tmp_path / "turing.csv").read_text().splitlines()
    assert lines[0] == ",".join(web_app.TURING_FIELDS) and lines.count(lines[0]) == 1
    rows = list(csv.DictReader(open(tmp_path / "turing.csv")))
    assert len(rows) == 120 and all(len(r) == len(web_app.TURING_FIELDS) and None not in r for r in rows)
    for name in ("alice", "bob"):
        assert sorted(int(r["index"]) for r in rows if r["session"] == name) == list(range(60))


def test_the_wilson_interval():
    low, high = web_app.wilson_interval(5, 10)
    assert abs(low - 0.2366) < 1e-3 and abs(high - 0.7634) < 1e-3
    assert web_app.wilson_interval(0, 0) == (0.0, 1.0)


browser = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chrome.new_page(accept_downloads=True, viewport={"width": 1000, "height": 700})
        chrome.close()


@browser
@pytest.mark.slow
def test_in_a_browser_a_photo_is_colorized_and_downloaded_and_a_text_file_gets_a_message(
        server, page, checkpoint, tmp_path):
    url, _ = server
    photo = png_file(tmp_path / "holiday.png", size=(120, 80), seed=3)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    page.goto(url + "/")
    page.set_input_files("#files", [str(photo)])
    page.wait_for_selector(".result.done", timeout=60000)
    with page.expect_download() as download:
        page.click(".result.done .download")
    saved = tmp_path / "downloaded.png"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "holiday_colorized.png"
    assert saved.read_bytes() == colorize_py_png(checkpoint, photo, tmp_path)
    page.set_input_files("#files", [str(notes)])
    page.wait_for_selector(".message.error", timeout=60000)
    assert "not an image" in page.inner_text(".message.error")


@browser
@pytest.mark.slow
def test_in_a_browser_ten_turing_answers_give_the_reported_rate_and_the_csv(server, page, checkpoint, tmp_path):
    url, _ = server
    page.goto(url + "/turing")
    page.fill("#session", "bob")
    page.click("#start")
    page.wait_for_selector("#test:not([hidden])")
    answers = ["real", "fake"] * 5
    for i, answer in enumerate(answers):
        page.wait_for_function(f"document.getElementById('progress').textContent.startsWith('Image {i + 1} ')")
        page.click("#real" if answer == "real" else "#fake")
    page.wait_for_function("document.getElementById('result').textContent.includes('Done')")
    rows = [r for r in csv.DictReader(open(checkpoint.parent / "turing.csv")) if r["session"] == "bob"]
    assert [r["answer"] for r in sorted(rows, key=lambda r: int(r["index"]))] == answers
    fakes = [r for r in rows if r["truth"] == "fake"]
    fooled = sum(r["answer"] == "real" for r in fakes)
    rate = f"{100 * fooled / len(fakes):.1f} %"
    text = page.inner_text("#result")
    assert f"Fooling rate: {rate} of {len(fakes)} colorized images" in text
    page.screenshot(path=str(tmp_path / "turing_page.png"), full_page=True)
    if os.environ.get("COLORGAN_WRITE_SCREENSHOTS"):
        shutil.copy(tmp_path / "turing_page.png", DOCS / "serve_turing.png")


def test_the_page_serves_an_exported_generator_with_colorize_py_s_bytes(checkpoint, tmp_path):
    import export
    from fastapi.testclient import TestClient
    exported = tmp_path / "exported"
    assert export.main(["--checkpoint", str(checkpoint), "--output", str(exported), "--format", "keras"]) == 0
    client = TestClient(web_app.create_app(exported, turing_images=4))
    source = png_file(tmp_path / "photo.png", size=(40, 28))
    answer = client.post("/api/colorize", files={"file": ("photo.png", source.read_bytes())})
    assert answer.status_code == 200
    assert answer.content == colorize_py_png(exported, source, tmp_path)  # the same file as colorize.py's
    state = client.get("/api/turing/bob").json()  # test images from the dataset export.json names
    assert state["total"] == 4 and state["next"] == 0
    assert client.post("/api/turing/bob", data={"index": 0, "answer": "real"}).json()["answered"] == 1
    assert (exported / "turing.csv").exists()  # the answers go beside the exported file
