"""The explorer through its HTTP API (gradio_client against the app on a free 127.0.0.1 port): every tab's
picture equals what generate.py draws for the same settings, bad inputs give one line and leave the server
running, two browsers keep their own state, projection streams its steps and can be cancelled."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import TINY_DCGAN, TINY_G, free_port
from PIL import Image

gr = pytest.importorskip("gradio", reason="the explorer's tests need Gradio: pip install -e \".[test]\"")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# gradio_client's own timeouts (5 s for a page, 20 s for a result) are for a server that has a core to itself; here
# the server shares this test process and two cores with the other test worker, and its first picture traces the
# generator: so 120 s, still a bound on every request.
CLIENT = dict(verbose=False, httpx_kwargs={"timeout": 120})


@pytest.fixture
def client(explore_server):
    return Client(explore_server[0], download_files=True, **CLIENT)


def read(path):
    return np.asarray(Image.open(path).convert("RGB"), np.int32)


def cli_images(network, seed, tmp_path, **kwargs):
    from stylegan_tf.generate.commands import images
    out = tmp_path / f"cli-{seed}-{len(os.listdir(tmp_path))}"
    return read(images(network, [seed], outdir=str(out), progress=False, **kwargs)[0])


@pytest.mark.parametrize("seed, psi, cutoff, noise, noise_seed", [
    (5, 0.7, 8, "const", -1), (7, 1.0, 8, "random", -1), (3, -0.5, 2, "none", -1), (4, 0.5, 8, "random", 9)])
def test_generate_is_the_cli_image(client, tiny_network_path, tmp_path, seed, psi, cutoff, noise, noise_seed):
    shown = read(client.predict(seed, psi, cutoff, 0, noise, noise_seed, api_name="/generate"))
    cli = cli_images(tiny_network_path, seed, tmp_path, truncation_psi=psi, truncation_cutoff=cutoff,
                     noise_mode=noise)
    if noise_seed < 0:
        assert np.abs(shown - cli).max() <= 1
    else:  # another noise seed draws other noise: the picture differs from the seed's own
        assert np.abs(shown - cli).max() > 1


def test_grid_mix_walks_and_cells_of_the_cli_figures(client, tiny_network_path, tmp_path):
    from stylegan_tf.generate.commands import style_mixing
    one = read(client.predict(10, 0.7, 8, 0, "const", -1, api_name="/generate"))
    grid = client.predict(10, 3, 0.7, 8, 0, "const", -1, api_name="/grid")
    assert len(grid) == 3 and np.abs(read(grid[0]["image"]) - one).max() <= 1
    assert grid[1]["caption"] == "seed 11"
    # Style mixing: the CLI's figure with A as the row and B as the column has the mix in its corner cell.
    coarse = [0, 1]
    a, b, mixed = (read(p) for p in client.predict(1, 2, coarse, 1.0, 8, 0, "const", -1, api_name="/mix"))
    fig = read(style_mixing(tiny_network_path, [1], [2], ["coarse"], out=str(tmp_path / "mix.png"),
                            progress=False)[0])
    r = TINY_G["resolution"]
    assert np.abs(fig[r:, r:] - mixed).max() <= 1 and np.abs(fig[r:, :r] - a).max() <= 1
    assert np.abs(fig[:r, r:] - b).max() <= 1 and np.abs(mixed - a).max() > 1
    # Walks: the ends are the seeds (Z and W), the middle is neither; z-walk with nothing added is the seed.
    for space in ("z", "w"):
        start = read(client.predict(1, 2, 0.0, space, 1.0, 8, 0, "const", -1, api_name="/walk"))
        end = read(client.predict(1, 2, 1.0, space, 1.0, 8, 0, "const", -1, api_name="/walk"))
        middle = read(client.predict(1, 2, 0.5, space, 1.0, 8, 0, "const", -1, api_name="/walk"))
        assert np.abs(start - a).max() <= 1 and np.abs(end - b).max() <= 1
        assert np.abs(middle - a).max() > 1 and np.abs(middle - b).max() > 1
    same = read(client.predict(1, 3, 0.0, "add", 1.0, 8, 0, "const", -1, api_name="/zwalk"))
    moved = read(client.predict(1, 3, 2.5, "add", 1.0, 8, 0, "const", -1, api_name="/zwalk"))
    assert np.abs(same - a).max() <= 1 and np.abs(moved - a).max() > 1


def edit(client, source="seed", seed=0, mode="linear", layers="all", smile=0.0, yaw=0.0):
    return client.predict(source, seed, mode, layers, smile, yaw, 1.0, 8, 0, "const", -1, api_name="/edit")


def reading(table, key, column):
    row = next(line for line in table.splitlines() if line.startswith(f"| {key} |"))
    return float(row.split("|")[column])


def test_edit_sliders_move_the_attribute_and_show_the_readings(client, tiny_network_path, tmp_path):
    base_image, base_table = edit(client)
    assert np.abs(read(base_image) - cli_images(tiny_network_path, 0, tmp_path, truncation_psi=1.0)).max() <= 1
    for mode in ("linear", "gradient"):
        image, table = edit(client, mode=mode, smile=3.0)
        assert np.abs(read(image) - read(base_image)).max() > 1
        # The predictor reads the moved w as more smiling (the tiny fit is weak: only the sign is sure).
        assert reading(table, "smile", 2) > reading(base_table, "smile", 2), (mode, table)
    assert "labeler" in base_table and np.isfinite(reading(base_table, "yaw", 3))
    paths = client.predict(api_name="/edit_download")
    assert sorted(os.path.basename(p) for p in paths) == ["edit.png", "w.npy"]
    assert np.load([p for p in paths if p.endswith(".npy")][0]).shape == (8, TINY_G["dlatent_size"])


def test_bad_values_give_one_line_and_the_server_keeps_serving(client):
    # A slider's range is checked by Gradio itself (its message names the bound); the rest by the explorer.
    for args, message in [((-1, 0.7, 8, 0, "const", -1), "seed must be between 0 and 4,294,967,295"),
                          ((None, 0.7, 8, 0, "const", -1), "seed: 'None' is not a number"),
                          ((1, 9.0, 8, 0, "const", -1), "greater than maximum value 1.5"),
                          ((1, 0.7, 99, 0, "const", -1), "greater than maximum value 8"),
                          ((1, 0.7, 8, 0, "loud", -1), "loud")]:
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name="/generate")
    with pytest.raises(AppError, match="greater than maximum value 1"):
        client.predict(1, 2, 1.5, "z", 1.0, 8, 0, "const", -1, api_name="/walk")
    with pytest.raises(AppError, match="12 .* is not in the list of choices"):
        client.predict(1, 2, [12], 1.0, 8, 0, "const", -1, api_name="/mix")
    assert read(client.predict(1, 0.7, 8, 0, "const", -1, api_name="/generate")).shape == (32, 32, 3)


def test_bad_uploads_are_refused_with_the_reason(client, explore_server, tiny_network_path, tmp_path):
    import urllib.error
    import urllib.request
    page = tmp_path / "page.png"
    page.write_text("<!doctype html><html><body>not found</body></html>")
    with pytest.raises(AppError, match="HTML/XML page"):
        client.predict(handle_file(str(page)), api_name="/photo_preview")
    bomb = tmp_path / "bomb.png"
    Image.new("L", (10000, 6000)).save(bomb)  # 60 megapixels of zeros: a small file that decodes huge
    with pytest.raises(AppError, match="pixels > the limit 50,000,000"):
        client.predict(handle_file(str(bomb)), api_name="/photo_preview")
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(21 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)size|large"):
        client.predict(handle_file(str(big)), api_name="/photo_preview")
    # Bound to this machine only by default; the app serves its own outputs, never other files: not the
    # network, not the sources.
    assert explore_server[0].startswith("http://127.0.0.1:")
    for path in (tiny_network_path, os.path.join(REPO, "setup.py")):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{explore_server[0]}gradio_api/file={path}", timeout=10)
        assert e.value.code in (403, 404)
    assert read(client.predict(2, 0.7, 8, 0, "const", -1, api_name="/generate")).shape == (32, 32, 3)


def photo_of(tiny_network_path, tmp_path, seed=3):
    """A generated picture as the 'photo' (at twice its size: the upload is resized like any photo)."""
    im = Image.fromarray(cli_images(tiny_network_path, seed, tmp_path).astype(np.uint8)).resize((64, 64))
    path = tmp_path / "photo.png"
    im.save(path)
    return str(path)


def test_projection_streams_then_edits_its_w_and_browsers_stay_apart(explore_server, tiny_network_path, tmp_path):
    a, b = Client(explore_server[0], **CLIENT), Client(explore_server[0], **CLIENT)
    job = a.submit(handle_file(photo_of(tiny_network_path, tmp_path)), 30, "w", api_name="/photo_project")
    updates = []
    while not job.done():
        time.sleep(0.1)
    updates = [o[0] for o in job.outputs()]
    status, target, recon, files, source = job.outputs()[-1]
    assert any("step" in u for u in updates[:-1]) and "PSNR" in status, updates
    assert sorted(os.path.basename(f) for f in files) == ["noise.npz", "reconstruction.png", "w.npy"]
    assert source == "photo" and np.load([f for f in files if f.endswith("w.npy")][0]).shape == (8, 32)
    # The Edit tab moves the photo's w: amount 0 is the reconstruction itself.
    image, _ = edit(a, source="photo")
    assert np.abs(read(image) - read(recon)).max() <= 1
    # Another browser has no photo: its Edit tab says so instead of showing a's.
    with pytest.raises(AppError, match="no photo yet"):
        edit(b, source="photo")


def test_projection_cancels(explore_server, tiny_network_path, tmp_path):
    c = Client(explore_server[0], **CLIENT)
    job = c.submit(handle_file(photo_of(tiny_network_path, tmp_path)), 2000, "w", api_name="/photo_project")
    deadline = time.time() + 60
    while not any("step" in o[0] and "starting" not in o[0] for o in job.outputs()) and time.time() < deadline:
        time.sleep(0.2)
    c.predict(api_name="/photo_cancel")
    while not job.done() and time.time() < deadline:
        time.sleep(0.2)
    assert job.done() and job.outputs()[-1][0].startswith("cancelled at step")
    assert int(job.outputs()[-1][0].split("step ")[1].split(" /")[0]) < 2000


def test_the_page_names_the_network_by_its_run_folder_and_file(explore_server, explore_network):
    header = next(str(b.value) for b in explore_server[1].blocks.values()
                  if isinstance(b, gr.Markdown) and "style layers" in str(b.value))
    path = os.path.abspath(explore_network)
    assert f"`{os.path.basename(os.path.dirname(path))}/{os.path.basename(path)}`" in header, header
    assert os.path.dirname(os.path.dirname(path)) not in header, header


def test_a_projection_request_does_not_trace(explore_server, monkeypatch):
    """The app traced the projector's step when it was built (`warm_up`): a request only runs it. Traces are
    counted in the Python body of the traced functions (they call `render`, which runs only while tracing)."""
    import threading

    from stylegan_tf.editing import projection
    from stylegan_tf.explore.engine import Cancelled
    ex = explore_server[1].explorer
    traces = []
    real_render = projection.render
    monkeypatch.setattr(projection, "render", lambda *a: traces.append(1) or real_render(*a))
    photo = ex.image(3)
    seen = []
    p = ex.project(photo, 4, "w", lambda *a: seen.append(a))
    assert not traces and not p.traced and len(p.losses) == 4
    assert [s for s, _, _ in seen] == [1, 2, 3, 4] and [d for _, _, d in seen] == p.losses
    # Cancel set before the first step: it stops after that step.
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        ex.project(photo, 4, "w", None, cancel)
    assert not traces


def test_a_dcgan_gets_its_pictures_and_the_reasons_for_the_rest(tmp_path):
    from stylegan_tf.explore import ExploreError, Explorer, build_app
    from stylegan_tf.generate.errors import GenerateError
    from stylegan_tf.generate.sampling import run_z
    from stylegan_tf.generate.seeds import seeds_to_z
    from stylegan_tf.networks.dcgan import DCGANGenerator
    G = DCGANGenerator(resolution=32, num_channels=3, **TINY_DCGAN)
    ex = Explorer(G)
    ref = run_z(G, seeds_to_z([4], G.latent_size), None, 0.7, 8, "const", 1, progress=False)[0]
    assert np.abs(ex.image(4).astype(int) - ref.astype(int)).max() <= 1
    for feature in ("mixing", "truncation", "w_space", "projection", "edit"):
        assert ex.why_not[feature], feature
    assert "dcgan" in ex.why_not["mixing"]
    with pytest.raises(ExploreError, match="style mixing needs a StyleGAN generator"):
        ex.mix(1, 2, [0])
    with pytest.raises(ExploreError, match="no learned W"):
        ex.walk(1, 2, 0.5, "w")
    # The explorer's own range checks (behind the page's sliders), each naming the control and its range.
    for call, message in [(lambda: ex.walk(1, 2, 1.5), "t must be between 0 and 1"),
                          (lambda: ex.z_walk(1, 99, 0.0), "dimension must be between 0 and 15"),
                          (lambda: ex.image(1, noise_mode="loud"), "noise mode: 'loud' is not one of")]:
        with pytest.raises(GenerateError, match=message):
            call()
    assert ex.walk(1, 2, 0.5, "z").shape == (32, 32, 3)
    app = build_app(ex)  # builds with the controls disabled and the reasons shown
    shown = " ".join(str(getattr(b, "value", "")) + str(getattr(b, "info", "")) for b in app.blocks.values())
    assert "style mixing needs a StyleGAN generator" in shown and "projection needs a StyleGAN" in shown
    app.outputs.close()


def test_the_listeners_that_redraw_a_picture_run_one_at_a_time(explore_server):
    """Every listener that redraws a tab's picture (its own controls, opening the tab, the common controls) is in
    one concurrency group of one, which gradio serves first in, first out: an older request cannot finish after a
    newer one and leave a stale picture on the page."""
    app = explore_server[1]
    fns = list(app.fns.values()) if isinstance(app.fns, dict) else list(app.fns)
    for label in ("image (as generate.py images draws it)", "A with B's chosen levels", "the picture at t",
                  "the seed with that dimension moved", "edited"):
        writers = [f for f in fns if label in [getattr(o, "label", None) for o in f.outputs]]
        assert len(writers) == 3, label
        assert {(f.concurrency_id, f.concurrency_limit) for f in writers} == {(writers[0].concurrency_id, 1)}, label


def test_launch_waits_for_a_slow_first_answer(monkeypatch):
    """On a busy machine the page's first answer can take longer than Gradio's one 3-second check, which then
    fails launch with a ValueError about share links: the explorer asks again until its page answers."""
    import httpx
    from stylegan_tf.explore import Explorer, build_app
    from stylegan_tf.networks.dcgan import DCGANGenerator
    real, probes = httpx.head, []

    def slow_at_first(url, **kwargs):
        probes.append(url)
        if len(probes) == 1:
            raise httpx.ReadTimeout("the page took longer than the check's timeout")
        return real(url, **kwargs)

    monkeypatch.setattr(httpx, "head", slow_at_first)
    G = DCGANGenerator(resolution=32, num_channels=3, **TINY_DCGAN)
    app = build_app(Explorer(G))
    try:
        _, url, _ = app.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
        assert len(probes) >= 2 and b"stylegan_tf explorer" in httpx.get(url, timeout=30).content
    finally:
        app.close(verbose=False)


def test_a_network_with_fewer_layers_than_the_default_cutoff(tmp_path):
    """16x16: 6 style layers, under the default cutoff 8, which then truncates every layer (as generate.py and
    NVIDIA's code); the app builds (its warm-up draws at that default); a negative cutoff is one line."""
    from stylegan_tf.explore import ExploreError, Explorer, build_app
    from stylegan_tf.generate.sampling import run_z
    from stylegan_tf.generate.seeds import seeds_to_z
    from stylegan_tf.networks import Generator
    G = Generator(**dict(TINY_G, resolution=16))
    G(np.zeros([1, TINY_G["latent_size"]], np.float32))
    ex = Explorer(G)
    assert ex.num_styles == 6
    for cutoff in (8, 6):
        ref = run_z(G, seeds_to_z([4], G.latent_size), None, 0.5, cutoff, "const", 1, progress=False)[0]
        assert np.abs(ex.image(4, psi=0.5, cutoff=cutoff).astype(int) - ref.astype(int)).max() <= 1
    with pytest.raises(ExploreError, match="cutoff must be 0 or more"):
        ex.image(4, cutoff=-1)
    build_app(ex).outputs.close()


def test_newest_snapshot_and_ctrl_c_stops_with_one_line(tiny_network_path, tmp_path):
    from stylegan_tf.explore import newest_snapshot
    assert newest_snapshot(str(tmp_path / "results")) is None
    runs = tmp_path / "results"
    old, new = runs / "00000-a" / "network-snapshot-000100.keras", runs / "00001-b" / "network-snapshot-000004.keras"
    for i, path in enumerate((old, new)):
        path.parent.mkdir(parents=True)
        path.write_bytes(open(tiny_network_path, "rb").read())
        os.utime(path, (1e9 + i, 1e9 + i))
    assert newest_snapshot(str(runs)) == str(new)
    code = ("import sys; from stylegan_tf.explore import explore; "
            f"explore(results={str(runs)!r}, port={free_port()})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    try:
        lines = []
        deadline = time.time() + 300  # a guard against a hang: on a loaded CPU the imports alone took over 90 s
        while time.time() < deadline and not any("Ctrl-C stops it" in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert lines[0].strip() == f"explore: the newest snapshot under {runs}/: {new}", lines
        assert any(line.startswith("explore: open http://127.0.0.1:") for line in lines), lines
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and out.strip().splitlines() == ["explore: stopped"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_moving_the_mixing_levels_synthesises_only_the_mix(tiny_network_path):
    from stylegan_tf.explore import Explorer
    ex, fresh = Explorer(tiny_network_path), Explorer(tiny_network_path)
    sizes, synth = [], ex.synth
    ex.synth = lambda w, *a, **k: sizes.append(len(w)) or synth(w, *a, **k)
    coarse, fine = ex.preset("coarse"), ex.preset("fine")
    first = ex.mix(1, 2, coarse, 0.7)
    second = ex.mix(1, 2, fine, 0.7)
    other_seed = ex.mix(1, 3, fine, 0.7)
    assert sizes == [3, 1, 2]  # sources drawn once per seed and settings; B changed: B and the mix
    for got, want in zip(second + other_seed, fresh.mix(1, 2, fine, 0.7) + fresh.mix(1, 3, fine, 0.7)):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.array_equal(first[0], second[0]) and np.abs(first[2].astype(int) - second[2]).max() > 1
    ex.mix(1, 2, fine, 0.5)  # another ψ is another picture of the same seeds
    assert sizes[-1] == 3
