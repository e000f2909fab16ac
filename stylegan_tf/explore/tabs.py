"""The explorer's tabs: each builds its controls and wires every one of them to redraw its pictures.

Controls shared by the tabs (ψ, cutoff, class, noise) sit above them; moving one redraws the tab in view
(the others redraw when opened). A control the network cannot honour is disabled with the reason as its
note. Every callback goes through `app.shown`, so a failure is one line in the page.
"""
import dataclasses
import threading
import time

import gradio as gr
import numpy as np

from stylegan_tf.explore.engine import MAX_GRID, MAX_PROJECTION_STEPS, NOISE_MODES, Cancelled
from stylegan_tf.explore.uploads import MAX_PIXELS, MAX_UPLOAD_TEXT, check_upload

PRIVATE = dict(api_visibility="private")
LIVE = dict(trigger_mode="always_last")
IMAGE = dict(format="png", type="numpy", interactive=False, elem_classes="explore-image", height=320)
# How often a running projection reports its step to the page (the page asks for at least once a second).
PROGRESS_EVERY_S = 0.5


def _in_order(name):
    """The listeners that redraw one tab's picture (its own controls, opening the tab, the common controls) run
    one at a time, in the order their events came: run side by side, an older request that finished last would
    leave a stale picture on the page."""
    return dict(concurrency_id=f"{name}-picture", concurrency_limit=1)


def _shown(fn):
    from stylegan_tf.explore.app import shown
    return shown(fn)


def picture(image):
    """uint8 HWC for the page: a one-channel image as HxW (Gradio shows it grey)."""
    image = np.asarray(image)
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image


def _skip(outputs):
    return gr.skip() if len(outputs) == 1 else tuple(gr.skip() for _ in outputs)


def _note(ex, *features):
    """A line under a tab's title naming what this network cannot do there (nothing when it can)."""
    reasons = [ex.why_not[f] for f in features if not ex.can(f)]
    if reasons:
        gr.Markdown("⚠ " + "; ".join(dict.fromkeys(reasons)), elem_classes="explore-note")


@dataclasses.dataclass
class Common:
    psi: object
    cutoff: object
    class_idx: object
    noise_mode: object
    noise_seed: object
    current: object  # gr.State: the tab in view

    @property
    def inputs(self):
        return [self.psi, self.cutoff, self.class_idx, self.noise_mode, self.noise_seed]


def common_controls(ex):
    """ψ, cutoff, class, noise mode and noise seed: what `generate.py` calls --trunc, --trunc-cutoff, --class,
    --noise-mode, with the CLI's defaults."""
    L = ex.num_styles
    with gr.Accordion("ψ, cutoff, class and noise (every tab)", open=True):
        with gr.Row():
            psi = gr.Slider(-1, 1.5, value=0.7, step=0.05, label="ψ (truncation; 1 = none)",
                            interactive=ex.can("truncation"), info=ex.why_not["truncation"])
            cutoff = gr.Slider(0, L, value=min(8, L), step=1, label=f"cutoff (truncate layers below it; {L} = all)",
                               interactive=ex.can("truncation"), info=ex.why_not["truncation"])
            class_idx = gr.Number(value=0, precision=0, label=f"class (0-{max(ex.label_size - 1, 0)})",
                                  interactive=ex.can("class"), info=ex.why_not["class"])
            noise_mode = gr.Radio(list(NOISE_MODES), value="const", label="noise",
                                  interactive=ex.can("noise"), info=ex.why_not["noise"])
            noise_seed = gr.Number(value=-1, precision=0,
                                   label="noise seed (random noise; -1 = the image's seed)",
                                   interactive=ex.can("noise"))
    return Common(psi, cutoff, class_idx, noise_mode, noise_seed, gr.State("generate"))


def wire(name, tab, own, common, fn, outputs, api_name):
    """Redraw `outputs` with fn(*own values, *common values) when an own control moves (the API endpoint
    `api_name`), when the tab is opened, and when a common control moves while this tab is in view."""
    fn = _shown(fn)
    inputs = list(own) + common.inputs
    gr.on([c.change for c in own], fn, inputs, outputs, api_name=api_name, **LIVE, **_in_order(name))
    tab.select(lambda: name, None, common.current, **PRIVATE).then(fn, inputs, outputs, **PRIVATE, **_in_order(name))

    def if_current(current, *values):
        return fn(*values) if current == name else _skip(outputs)

    gr.on([c.change for c in common.inputs], if_current, [common.current] + inputs, outputs, **PRIVATE, **LIVE,
          **_in_order(name))


def generate_tab(ex, common):
    with gr.Tab("Generate", id="generate") as tab:
        with gr.Row():
            with gr.Column(scale=1):
                seed = gr.Number(value=0, precision=0, label="seed")
                random_seed = gr.Button("random seed")
                count = gr.Slider(1, MAX_GRID, value=8, step=1, label="grid: this many seeds from this one")
                show_grid = gr.Button("show the grid")
            image = gr.Image(label="image (as generate.py images draws it)", scale=2, **IMAGE)
        gallery = gr.Gallery(label="grid: click a picture to make its seed the current one", columns=8,
                             format="png", height="auto", allow_preview=False)
    wire("generate", tab, [seed], common, lambda s, *c: picture(ex.image(s, *c)), [image], "generate")
    random_seed.click(lambda: int(np.random.randint(0, 2**31)), None, seed, **PRIVATE)

    def grid(start, n, *c):
        seeds = [int(start) + i for i in range(int(n))]
        return [(picture(im), f"seed {s}") for s, im in zip(seeds, ex.images(seeds, *c))]

    show_grid.click(_shown(grid), [seed, count] + common.inputs, gallery, api_name="grid")

    def pick(start, evt: gr.SelectData):
        return int(start) + int(evt.index)

    gallery.select(pick, seed, seed, **PRIVATE)


def mix_tab(ex, common):
    L = ex.num_styles
    presets = ex.can("mixing_presets")
    with gr.Tab("Style mixing", id="mix") as tab:
        _note(ex, "mixing", "mixing_presets")
        on = ex.can("mixing")
        with gr.Row():
            seed_a = gr.Number(value=1, precision=0, label="seed A (the base)",
                               interactive=on)
            seed_b = gr.Number(value=2, precision=0, label="seed B (gives the levels)",
                               interactive=on)
            preset = gr.Radio(["coarse", "middle", "fine", "custom"], value="coarse" if presets else "custom",
                              label="levels from B: preset", interactive=presets)
        layers = gr.CheckboxGroup([(n, i) for i, n in enumerate(ex.layer_names())],
                                  value=ex.preset("coarse") if presets else [], label=f"levels from B (0-{L - 1})",
                                  interactive=on)
        with gr.Row():
            image_a = gr.Image(label="A", **IMAGE)
            image_b = gr.Image(label="B", **IMAGE)
            mixed = gr.Image(label="A with B's chosen levels", **IMAGE)
    if presets:
        preset.change(lambda p: gr.skip() if p == "custom" else ex.preset(p), preset, layers, **PRIVATE)
    if on:
        wire("mix", tab, [seed_a, seed_b, layers], common,
             lambda a, b, lv, *c: tuple(picture(x) for x in ex.mix(a, b, lv, *c)), [image_a, image_b, mixed], "mix")


def walk_tab(ex, common):
    with gr.Tab("Walk", id="walk") as tab:
        gr.Markdown("From seed A to seed B: slerp in Z or lerp in W, as `generate.py interpolate`.")
        with gr.Row():
            seed_a = gr.Number(value=1, precision=0, label="seed A")
            seed_b = gr.Number(value=2, precision=0, label="seed B")
            space = gr.Radio(["z", "w"], value="z", label="space", interactive=ex.can("w_space"),
                             info=ex.why_not["w_space"])
        t = gr.Slider(0, 1, value=0.5, step=0.01, label="t (0 = A, 1 = B)")
        walk = gr.Image(label="the picture at t", **IMAGE)
        gr.Markdown("One z dimension of a seed, as `generate.py z-walk`.")
        with gr.Row():
            seed = gr.Number(value=1, precision=0, label="seed")
            dim = gr.Slider(0, ex.latent_size - 1, value=0, step=1, label="z dimension")
            mode = gr.Radio(["set", "add"], value="set", label="set the dimension to the value, or add it")
        value = gr.Slider(-5, 5, value=0, step=0.1, label="value")
        zwalk = gr.Image(label="the seed with that dimension moved", **IMAGE)
    wire("walk", tab, [seed_a, seed_b, t, space], common, lambda *a: picture(ex.walk(*a)), [walk], "walk")
    wire("walk", tab, [seed, dim, value, mode], common, lambda *a: picture(ex.z_walk(*a)), [zwalk], "zwalk")


@dataclasses.dataclass
class EditTab:
    source: object  # the Radio that says whether the Edit tab moves a seed or the projected photo


def edit_tab(ex, common, session, outputs):
    keys = list(ex.directions.keys) if ex.directions is not None else []
    on = ex.can("edit")
    with gr.Tab("Edit", id="edit") as tab:
        _note(ex, "edit")
        gr.Markdown("Amounts are standard deviations of W along each attribute (linear), or of the predicted "
                    "attribute (gradient), as `generate.py edit`.")
        with gr.Row():
            source = gr.Radio(["seed", "photo"], value="seed", label="edit", interactive=on)
            seed = gr.Number(value=0, precision=0, label="seed", interactive=on)
            mode = gr.Radio(["linear", "gradient"], value="linear", label="mode", interactive=on,
                            info="gradient: the two-layer predictor's descent")
            layers = gr.Dropdown(["all", "coarse", "middle", "fine"] if ex.can("mixing_presets") else ["all"],
                                 value="all", label="layers", interactive=on)
        sliders = [gr.Slider(-5, 5, value=0, step=0.1, label=k, interactive=on) for k in keys]
        with gr.Row():
            image = gr.Image(label="edited", **IMAGE)
            readings = gr.Markdown(ex.why_not["labeler"] or "")
        with gr.Row():
            reset = gr.Button("reset the sliders", interactive=on)
            save = gr.Button("download PNG and w.npy", interactive=on)
        files = gr.File(label="download", file_count="multiple", interactive=False)
    if not on:
        return EditTab(source)

    def render(src, s, md, lv, *rest):
        amounts, (psi, cutoff, cls, _, _), state = rest[:len(keys)], rest[len(keys):-1], rest[-1]
        if src == "photo":
            photo = state.get("photo")
            if photo is None:
                raise gr.Error("no photo yet: project one in the Your photo or Camera tab first")
            w, noise = photo["w"], photo["noise"]
        else:
            w, noise = ex.truncated(ex.w_of([ex._seed(s)], ex._class(cls)), *ex._truncation(psi, cutoff))[0], None
        w, img, read = ex.edit(w, dict(zip(keys, amounts)), md, lv, noise)
        state["edit"] = {"w": w, "image": img, "noise": noise}
        return picture(img), format_readings(read), state

    own = [source, seed, mode, layers] + sliders
    # Inputs: own controls, the session state, the common controls; render takes the state last.
    fn = _shown(lambda *a: render(*a[:len(own)], *a[len(own) + 1:], a[len(own)]))
    inputs = own + [session] + common.inputs
    outs = [image, readings, session]
    gr.on([c.change for c in own], fn, inputs, outs, api_name="edit", **LIVE, **_in_order("edit"))
    tab.select(lambda: "edit", None, common.current, **PRIVATE).then(fn, inputs, outs, **PRIVATE, **_in_order("edit"))
    gr.on([c.change for c in common.inputs],
          lambda cur, *a: fn(*a) if cur == "edit" else _skip(outs), [common.current] + inputs, outs, **PRIVATE, **LIVE,
          **_in_order("edit"))
    reset.click(lambda: [0] * len(sliders) if len(sliders) > 1 else 0, None, sliders, **PRIVATE)

    def download(state, request: gr.Request):
        edited = state.get("edit")
        if edited is None:
            raise gr.Error("nothing edited yet: move a slider first")
        return outputs.save(getattr(request, "session_hash", None), edited["image"], edited["w"], edited["noise"],
                            "edit")

    save.click(_shown(download), session, files, api_name="edit_download")
    return EditTab(source)


def format_readings(readings):
    """A Markdown table: attribute | two-layer predictor's reading of w | the labeler's reading of the picture."""
    predicted, measured = readings.get("predicted", {}), readings.get("measured", {})
    keys = list(dict.fromkeys(list(predicted) + list(measured)))
    if not keys:
        return ""
    rows = ["| attribute | predicted (from w) | labeler (from the picture) |", "|---|---|---|"]
    for k in keys:
        p, m = predicted.get(k), measured.get(k)
        rows.append(f"| {k} | {'' if p is None else f'{p:.3f}'} | {'' if m is None else f'{m:.3f}'} |")
    return "\n".join(rows)


def photo_tab(app, ex, session, edit, camera=False):
    """Your photo / Camera: the picture -> projection (progress, cancel) -> photo and reconstruction side by
    side with PSNR -> the Edit tab moves its w. Downloads: the reconstruction, w.npy and noise.npz."""
    name = "camera" if camera else "photo"
    on = ex.can("projection")
    spaces = ex.projection_spaces
    with gr.Tab("Camera" if camera else "Your photo", id=name):
        _note(ex, "projection", "projection_w")
        if camera:
            source = gr.Image(sources=["webcam"], type="filepath", format="png", image_mode=None,
                              label="camera: take a snapshot", interactive=on, height=IMAGE["height"])
        else:
            source = gr.File(label=f"photo (PNG, JPEG, WebP, ...; up to {MAX_UPLOAD_TEXT} and "
                                   f"{MAX_PIXELS // 1_000_000} megapixels; centre-cropped to a square)",
                             file_types=["image"], type="filepath", interactive=on)
        with gr.Row():
            steps = gr.Slider(10, MAX_PROJECTION_STEPS, value=200, step=10, label="projection steps (NVIDIA: 1000)",
                              interactive=on)
            space = gr.Radio(spaces, value=spaces[0], label="space (w+: closer, less editable)", interactive=on,
                             info=ex.why_not["projection_w"])
        with gr.Row():
            start = gr.Button("project", variant="primary", interactive=on)
            stop = gr.Button("cancel", interactive=on)
        status = gr.Markdown("")
        with gr.Row():
            target = gr.Image(label="the photo (as the network sees it)", **IMAGE)
            recon = gr.Image(label="reconstruction", **IMAGE)
        files = gr.File(label="download: reconstruction.png, w.npy, noise.npz", file_count="multiple",
                        interactive=False)
    if not on:
        return

    source.change(_shown(lambda path: picture(check_upload(ex, path)) if path else None), source, target,
                  api_name=f"{name}_preview")

    def cancel_event(request):
        key = getattr(request, "session_hash", None)
        with app.cancels_lock:
            return app.cancels.setdefault(key, threading.Event())

    def run(path, n, sp, state, request: gr.Request, progress=gr.Progress()):
        photo = check_upload(ex, path)
        cancel = cancel_event(request)
        cancel.clear()
        seen = {"step": 0, "total": int(n), "distance": None}
        done = {}

        def work():
            try:
                done["result"] = ex.project(photo, int(n), sp, lambda s, t, d: seen.update(step=s, total=t,
                                                                                           distance=d), cancel)
            except BaseException as e:  # noqa: BLE001 - handed to the page below
                done["error"] = e

        worker = threading.Thread(target=work, name=f"explore-projection-{name}", daemon=True)
        worker.start()
        yield "projecting: starting", picture(photo), None, None, \
            gr.skip(), gr.skip()
        while worker.is_alive():
            worker.join(PROGRESS_EVERY_S)
            progress((seen["step"], seen["total"]), desc="projecting", unit="steps")
            dist = "" if seen["distance"] is None else f" · distance {seen['distance']:.4f}"
            yield f"projecting: step {seen['step']} / {seen['total']}{dist}", gr.skip(), gr.skip(), gr.skip(), \
                gr.skip(), gr.skip()
        if isinstance(done.get("error"), Cancelled):
            yield f"cancelled at step {seen['step']} / {seen['total']}", gr.skip(), None, None, gr.skip(), gr.skip()
            return
        if "error" in done:
            raise done["error"]
        p = done["result"]
        state = dict(state or {})
        state["photo"] = {"w": p.w, "noise": p.noise}
        paths = app.outputs.save(getattr(request, "session_hash", None), p.image, p.w, p.noise, "reconstruction")
        yield (f"done: {seen['total']} steps · PSNR {p.psnr:.2f} dB · SSIM {p.ssim:.3f}. The Edit tab now moves "
               "this photo's w.", gr.skip(), picture(p.image), paths, state, "photo")

    start.click(_shown_stream(run), [source, steps, space, session], [status, target, recon, files, session,
                                                                        edit.source],
                api_name=f"{name}_project", concurrency_id="projection", concurrency_limit=1)
    def stop_it(request: gr.Request):
        cancel_event(request).set()

    stop.click(stop_it, None, None, api_name=f"{name}_cancel")


def _shown_stream(gen_fn):
    """`app.shown` for a generator callback: a failure at any step is one line in the page."""
    import functools

    from stylegan_tf.explore.app import user_message

    @functools.wraps(gen_fn)
    def wrapper(*args, **kwargs):
        try:
            yield from gen_fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001
            raise gr.Error(user_message(exc), print_exception=False) from None
    return wrapper
