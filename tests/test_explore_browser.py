"""The explorer in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium, which .ci/run installs;
never a browser that `playwright install` downloads) through every tab on the tiny network, with every request
to anything but 127.0.0.1 refused (the page must work offline), and checks after each step that the shown
picture changed as it should. Screenshots go to the test's temporary folder, or to $EXPLORE_SCREENSHOTS; docs/explore.md's come from
`EXPLORE_NETWORK=net.keras EXPLORE_SCREENSHOTS=docs/images python -m pytest tests/test_explore_browser.py`
(any 32x32 StyleGAN; the tiny random one without EXPLORE_NETWORK).

Under CI=true the test runs and a missing browser fails it; elsewhere a missing browser skips it, saying why."""
import io
import os
import time

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CI = os.environ.get("CI", "").lower() == "true"
LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")
TIMEOUT_MS = 60_000   # per step; the page shares two cores with the other test worker


try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None


def _missing():
    """Why the browser test cannot run here (None: it can)."""
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    if sync_playwright is None:
        return "no Playwright for Python: pip install -e \".[test]\""
    return None


# Skipped before any fixture is built (the served app takes half a minute); under CI=true it never skips.
pytestmark = pytest.mark.skipif(not CI and _missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def browser_page(explore_server):
    """(page, refused requests) of Chromium on the served explorer; the browser closes after the module."""
    if _missing():
        pytest.fail(f"CI=true: the browser test must run: {_missing()}")
    url = explore_server[0]
    refused = []

    def only_local(route):
        if route.request.url.startswith(LOCAL):
            return route.continue_()
        refused.append(route.request.url)
        return route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            context.grant_permissions(["camera"], origin=url.rstrip("/"))
            context.route("**/*", only_local)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            yield page, refused
        finally:
            browser.close()


class Shots:
    """Saves numbered screenshots of the page (explore-<name>.png)."""

    def __init__(self, page, folder):
        self.page, self.folder = page, folder
        os.makedirs(folder, exist_ok=True)

    def __call__(self, name):
        path = os.path.join(self.folder, f"explore-{name}.png")
        self.page.screenshot(path=path)
        return path


def shown(page, label, timeout=TIMEOUT_MS / 1000):
    """The pixels (int32 HWC) of the visible picture under `label`, read back from the page's own image URL."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        src = page.evaluate("""(label) => {
            for (const block of document.querySelectorAll('.block')) {
                const l = block.querySelector('label, span[data-testid="block-label"]');
                const img = block.querySelector('img');
                if (l && l.textContent.trim() === label && img && img.offsetParent && img.complete
                    && img.naturalWidth) return img.src;
            }
            return null; }""", label)
        if src:
            data = page.request.get(src).body()
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.int32)
        time.sleep(0.2)
    raise AssertionError(f"no picture shown under '{label}'")


def becomes(page, label, check, what, timeout=TIMEOUT_MS / 1000):
    """The picture under `label` once `check(pixels)` holds (the page redraws after a request)."""
    deadline = time.time() + timeout
    while True:
        now = shown(page, label)
        if check(now):
            return now
        if time.time() > deadline:
            raise AssertionError(f"the picture under '{label}' never became {what}")
        time.sleep(0.2)


def differs(before):
    return lambda now: now.shape != before.shape or np.abs(now - before).max() > 1


def equals(expected):
    expected = np.asarray(expected, np.int32)
    return lambda now: now.shape == expected.shape and np.abs(now - expected).max() <= 1


def type_in(page, label, value):
    """Type `value` into the number box labelled `label` (a slider's box: "number input for <label>") + Enter."""
    box = page.get_by_label(label, exact=True).first
    box.fill(str(value))
    box.press("Enter")


def slide(page, label, value):
    """Move the slider labelled `label` to `value` (its range input, as dragging it would)."""
    page.get_by_label(f"range slider for {label}", exact=True).first.fill(str(value))


def test_every_tab_in_chromium(browser_page, explore_server, tmp_path):
    from stylegan_tf.data.demo_faces import render
    page, refused = browser_page
    ex = explore_server[1].explorer
    shot = Shots(page, os.environ.get("EXPLORE_SCREENSHOTS") or str(tmp_path / "screenshots"))
    # Generate: the first picture is seed 0 at the default ψ 0.7; it is the explorer's own picture.
    label = "image (as generate.py images draws it)"
    becomes(page, label, equals(ex.image(0, psi=0.7)), "seed 0 at ψ 0.7")
    # ψ 0 (cutoff 8: every layer) makes every seed the average face: another seed shows the same picture.
    type_in(page, "number input for ψ (truncation; 1 = none)", 0)
    average = becomes(page, label, equals(ex.image(0, psi=0.0)), "the average face (ψ 0)")
    type_in(page, "seed", 7)
    page.wait_for_timeout(1000)
    assert equals(average)(shown(page, label)), "ψ 0: seed 7 should show the same average face"
    slide(page, "ψ (truncation; 1 = none)", 1)
    becomes(page, label, equals(ex.image(7, psi=1.0)), "seed 7 at ψ 1")
    shot("generate")
    # Style mixing: A and B beside the mix; "fine" takes other levels from B than "coarse".
    page.get_by_role("tab", name="Style mixing").click()
    mixed = "A with B's chosen levels"
    a, b, mix = ex.mix(1, 2, ex.preset("coarse"), psi=1.0)
    becomes(page, "A", equals(a), "seed 1")
    becomes(page, "B", equals(b), "seed 2")
    becomes(page, mixed, equals(mix), "seed 1 with seed 2's coarse levels")
    page.get_by_label("fine", exact=True).check()
    becomes(page, mixed, equals(ex.mix(1, 2, ex.preset("fine"), psi=1.0)[2]), "seed 1 with seed 2's fine levels")
    shot("mixing")
    # Walk: t = 1 is seed B itself.
    page.get_by_role("tab", name="Walk").click()
    at = "the picture at t"
    becomes(page, at, equals(ex.walk(1, 2, 0.5, psi=1.0)), "the middle of the walk")
    slide(page, "t (0 = A, 1 = B)", 1)
    becomes(page, at, equals(b), "seed B at t = 1")
    shot("walk")
    # Edit: the smile slider moves the picture; the readings table shows the predictor's and labeler's values.
    page.get_by_role("tab", name="Edit").click()
    before = becomes(page, "edited", equals(ex.image(0, psi=1.0)), "seed 0 unedited")
    slide(page, "smile", 4)
    becomes(page, "edited", differs(before), "the edited seed")
    page.get_by_text("labeler (from the picture)").first.wait_for()
    shot("edit")
    # Your photo: upload, a short projection, the reconstruction beside the photo with its PSNR.
    page.get_by_role("tab", name="Your photo").click()
    photo = tmp_path / "face.png"
    Image.fromarray(render(0, 20000, 64)[0]).save(photo)  # a demo face outside the 10,000 training faces
    page.locator("input[type=file]").first.set_input_files(str(photo))
    target = becomes(page, "the photo (as the network sees it)", lambda now: now.shape == (32, 32, 3), "the photo")
    slide(page, "projection steps (NVIDIA: 1000)", 20)
    page.get_by_role("button", name="project", exact=True).first.click()
    page.get_by_text("PSNR").first.wait_for(timeout=90_000)
    recon = becomes(page, "reconstruction", differs(np.zeros_like(target)), "the reconstruction")
    shot("photo")
    # The Edit tab now moves the photo's w: with the smile slider back at 0 it shows the reconstruction.
    page.get_by_role("tab", name="Edit").click()
    assert page.get_by_label("photo", exact=True).first.is_checked()
    slide(page, "smile", 0)
    becomes(page, "edited", equals(recon), "the reconstruction (photo, no edit)")
    slide(page, "smile", 4)
    becomes(page, "edited", differs(recon), "the edited photo")
    # A file that is no image: one line in the page, and the app goes on working.
    page.get_by_role("tab", name="Your photo").click()
    notes = tmp_path / "notes.png"
    notes.write_text("{\"not\": \"an image\"}")
    page.get_by_role("button", name="Clear").first.click()  # the file box takes a new file once emptied
    page.locator("input[type=file]").first.set_input_files(str(notes))
    page.get_by_text("not an image").first.wait_for()
    page.locator(".toast-close").first.click()  # read and closed, as a user would: the next tab's screenshot
    page.get_by_text("not an image").first.wait_for(state="hidden")
    # Camera: the fake camera's frame, snapped, shown as the network sees it.
    page.get_by_role("tab", name="Camera").click()
    page.get_by_text("Click to Access Webcam").first.click()
    # A snapshot taken before the stream delivers frames is empty: wait for the first frame.
    page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.videoWidth > 0)")
    page.get_by_label("capture photo").first.click()
    becomes(page, "the photo (as the network sees it)", lambda now: now.shape == (32, 32, 3)
            and not equals(target)(now), "the camera's snapshot")
    shot("camera")
    assert not refused, f"the page asked for outside resources: {refused[:5]}"
