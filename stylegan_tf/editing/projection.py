"""Projection of a real image into W (or W+): the latent and noise maps that make the generator reproduce it.

The procedure is the one of NVIDIA's StyleGAN2 projector (Karras et al. 2020, Sec. 5; written here from its
description and numbers): start at the mean w of 10,000 samples; Adam on w and on every noise map; the learning
rate ramps up over the first 5 % of the steps and down with a cosine over the last 25 %; w gets Gaussian noise
of 0.05 * (the spread of W) that fades to zero over the first 75 % (squared); the noise maps are renormalised to
zero mean / unit variance after every step and regularised against spatial autocorrelation at every scale
down to 8x8 (weight 1e5), so they cannot carry the image themselves.

The image distance. NVIDIA uses LPIPS on VGG16 features (images larger than 256 area-downsampled to 256). Its
weights ship with no installed package: pass them (`lpips=`, `--lpips`; see `editing.lpips`) and the distance is
exactly that. Without them:
  pixel + multi-scale: mean squared error of the images and of each 2x average-pooled version down to 8x8
  (coarse structure is matched first, fine detail does not dominate), plus
  features: the discriminator's per-block activations (the network file carries D), each block's squared
  difference divided by the target's mean square, times `feature_weight`. D was trained on exactly this
  image distribution, so its features are the perceptual space that is available without extra weights.
"""
import collections
import dataclasses
import math
import os
import threading

import numpy as np

from stylegan_tf.atomic import atomic_dir, check_dir_target
from stylegan_tf.editing.errors import EditError
from stylegan_tf.generate.seeds import check_range

SPACES = ("w", "w+")
# Everything a projection folder holds; `--overwrite` replaces only a folder holding nothing else.
PROJECTION_FILES = ("w.npy", "noise.npz", "target.png", "reconstruction.png", "projection.json", "progress.gif")
# NVIDIA's projector runs 1000 steps; ten times that is past any gain, and a mistyped count must not run for days.
MAX_STEPS = 10000


@dataclasses.dataclass
class Projection:
    """w [num_styles, dlatent] (W: every row the same), noise (list of [1, r, r, 1]), image/target uint8 HWC,
    psnr (dB), ssim, losses (per step done: fewer than asked when `on_step` stopped it), frames (uint8
    [F, H, 2W, C]: target | current), paths written, traced (this call traced the projector's step: the first
    call for a network and settings)."""
    w: np.ndarray
    noise: list
    image: np.ndarray
    target: np.ndarray
    psnr: float
    ssim: float
    losses: list
    frames: np.ndarray = None
    paths: list = dataclasses.field(default_factory=list)
    traced: bool = False


def load_target(image, resolution, channels, flag="--image", max_pixels=None):
    """A photo (any size/mode, centre-cropped and resized with Lanczos as dataset_tool does) or a uint8 HWC
    array -> uint8 [resolution, resolution, channels]. A photo of more than `max_pixels` pixels (default
    Pillow's decompression-bomb limit, as dataset_tool's --max-pixels) is refused before it is decoded."""
    if isinstance(image, np.ndarray):
        a = np.asarray(image)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape != (resolution, resolution, channels):
            raise EditError(f"{flag}: array has shape {list(a.shape)}, expected {[resolution, resolution, channels]}")
        return a.astype(np.uint8)
    from stylegan_tf.data.images import DEFAULT_MAX_PIXELS, SkipImage, load_image
    path = os.fspath(image)
    if not os.path.isfile(path):
        raise EditError(f"{flag}: {path} does not exist")
    if max_pixels is not None and int(max_pixels) < 1:
        raise EditError(f"--max-pixels must be at least 1 (got {max_pixels})")
    opts = {"resolution": int(resolution), "channels": int(channels), "transform": "center-crop",
            "resample": "lanczos", "alpha_bg": (255, 255, 255), "pad_color": (0, 0, 0), "wide_aspect": 4 / 3,
            "min_size": 1, "allow_upscale": True, "max_pixels": int(max_pixels or DEFAULT_MAX_PIXELS)}
    try:
        chw = load_image(path, opts)
    except SkipImage as e:
        raise EditError(f"{flag}: {path}: {e.reason}") from None
    return chw.transpose(1, 2, 0)


def render(synthesis, w, noises):
    """The synthesis network at full resolution (lod 0) with the given noise maps: differentiable in both.
    Equal to `Gs.synthesize(w, noise_mode='const')` when `noises` are the stored buffers."""
    def layer(i, x):
        style = w[:, i] if synthesis.use_styles else w[:, 0]
        return synthesis.epilogues[i](x, style, noise=noises[i] if noises else None)

    from keras import ops
    if synthesis.const_input_layer:
        x = synthesis.input_layer(w)
    else:
        x = synthesis.input_layer(w[:, 0])
        x = ops.transpose(ops.reshape(x, [-1, synthesis.nf(1), 4, 4]), [0, 2, 3, 1])
    x = layer(0, x)
    x = layer(1, synthesis.convs[0](x))
    L = synthesis.resolution_log2
    for res in range(3, L + 1):
        i = 2 * res - 4
        x = layer(i, synthesis.blurs[res - 3](synthesis.convs[i - 1](x)))
        x = layer(i + 1, synthesis.convs[i](x))
    return synthesis.torgbs[L - 2](x)


def discriminator_features(D, images):
    """D's activations after FromRGB and after each resolution block (full resolution path)."""
    x = D.fromrgbs[0](images)
    feats = [x]
    for block in D.blocks:
        x = block(x)
        feats.append(x)
    return feats


def image_metrics(a, b):
    """(PSNR dB, SSIM) of two uint8 HWC images (SSIM: Gaussian 11x11 window, sigma 1.5, or the image size)."""
    import tensorflow as tf
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    mse = float(np.mean((a - b) ** 2))
    psnr = float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
    size = min(11, a.shape[0], a.shape[1])
    ssim = float(tf.image.ssim(tf.constant(a), tf.constant(b), max_val=255.0, filter_size=size))
    return psnr, ssim


def _noise_regularization(tf, noises):
    """Squared spatial autocorrelation (one pixel right and down) at every scale down to 8x8."""
    reg = 0.0
    for v in noises:
        while True:
            reg += tf.reduce_mean(v * tf.roll(v, 1, axis=2)) ** 2 + tf.reduce_mean(v * tf.roll(v, 1, axis=1)) ** 2
            if v.shape[1] <= 8:
                break
            v = tf.nn.avg_pool2d(v, 2, 2, "VALID")
    return reg


def _load_networks(network):
    """(Gs, D or None) from a path or an object with .Gs/.D."""
    if hasattr(network, "Gs"):
        return network.Gs, getattr(network, "D", None)
    if hasattr(network, "synthesize"):
        return network, None
    from stylegan_tf.network_io import open_network
    nets = open_network(network, "--network", EditError)
    return nets.Gs, getattr(nets, "D", None)


def project(network, image, out_dir=None, steps=1000, space="w", w_avg_samples=10000, initial_lr=0.1,
            initial_noise_factor=0.05, lr_rampdown=0.25, lr_rampup=0.05, noise_ramp=0.75, noise_weight=1e5,
            feature_weight=0.1, use_discriminator=True, lpips=None, frames=50, seed=0, overwrite=False,
            progress=True, max_pixels=None, on_step=None):
    """Find w (and noise maps) reproducing `image`; with `out_dir`, write w.npy, noise.npz, target.png,
    reconstruction.png, progress.gif and projection.json there (all or nothing).

    The step is traced once per (generator, discriminator, LPIPS object, space, feature_weight, noise_weight)
    and kept for the last few of them, so a second projection on the same network objects starts at once (a
    network given as a path is loaded anew, and so traced anew, on every call).

    Args:
        network: a network path (the discriminator it holds gives the feature loss) or an object with .Gs.
        image: a photo path (any size / mode) or uint8 HWC array at the network's resolution.
        steps: optimisation steps (NVIDIA: 1000).
        space: 'w' (one w for every layer, as NVIDIA's projector) or 'w+' (one per layer: closer fits, less
            editable).
        w_avg_samples, initial_lr, initial_noise_factor, lr_rampdown, lr_rampup, noise_ramp, noise_weight:
            the projector's schedule (NVIDIA's values).
        feature_weight: weight of the discriminator-feature term; use_discriminator False: pixel terms only.
        lpips: LPIPS weights (path, list of paths, 'a.pth,b.pth' or an `LPIPS`): the distance is LPIPS alone.
        frames: progress video frames (0 = none).
        overwrite: replace an existing `out_dir`, only if it holds nothing but a projection's files.
        max_pixels: refuse a photo of more pixels (default Pillow's decompression-bomb limit).
        on_step: called after every step as on_step(step, total, info), step 1..total, info a dict with
            'distance' (the image distance of that step) and 'learning_rate'. Returning False stops the
            projection there: the result (and `out_dir`, with "stopped_early" in projection.json) is the
            projection after the steps done. Any other return value goes on; an exception it raises passes
            through and nothing is written.

    Example:
        p = project("net.keras", "photo.png", out_dir="proj", steps=500)
        print(p.psnr, p.ssim)  # then: edit(..., w="proj/w.npy")

        # Progress shown elsewhere than a terminal, and a stop button that sets `stop` (a threading.Event):
        def report(step, total, info):
            print(f"{step}/{total} distance {info['distance']:.4f}")
            return not stop.is_set()  # False: stop after this step
        p = project(nets, photo, steps=1000, progress=False, on_step=report)
        len(p.losses)  # the steps done
    """
    import keras

    from stylegan_tf.editing.latents import sample_w
    from stylegan_tf.image_grid import to_uint8
    if keras.backend.backend() != "tensorflow":
        raise EditError(f"projection differentiates through the generator with TensorFlow; run it with "
                        f"KERAS_BACKEND=tensorflow (now {keras.backend.backend()})")
    if space not in SPACES:
        raise EditError(f"--space: '{space}' is not one of {', '.join(SPACES)}")
    check_range(int(steps), "--steps", 1, MAX_STEPS)
    if out_dir is not None:
        out_dir = os.fspath(out_dir)
        check_dir_target(out_dir, overwrite, PROJECTION_FILES, "a projection")
        from stylegan_tf.generate.output import check_folder_writable
        check_folder_writable(os.path.dirname(os.path.abspath(out_dir)))
    lp = None
    if lpips is not None:
        from stylegan_tf.editing.lpips import LPIPS
        lp = lpips if isinstance(lpips, LPIPS) else LPIPS.from_files(lpips)
    Gs, D = _load_networks(network)
    synthesis = getattr(Gs, "synthesis", None)
    if synthesis is None or not hasattr(synthesis, "epilogues"):
        raise EditError(f"--network: projection needs a StyleGAN synthesis network (this generator is a "
                        f"{type(Gs).__name__})")
    if D is not None and not (hasattr(D, "fromrgbs") and hasattr(D, "blocks")):
        D = None  # another architecture's discriminator: the pixel terms alone
    if float(np.asarray(getattr(Gs, "lod", 0.0))) != 0.0:
        raise EditError(f"--network: the generator is still growing (lod {float(np.asarray(Gs.lod)):.2f}); "
                        "project with a network trained to full resolution")
    if space == "w" and getattr(Gs, "per_level_styles", False):
        raise EditError("--space: this network's mapping gives each resolution level its own style; project "
                        "with --space w+")
    target_u8 = load_target(image, Gs.resolution, Gs.num_channels, max_pixels=max_pixels)

    _, w_samples = sample_w(Gs, w_avg_samples, seed)
    w_samples = w_samples.astype(np.float64)
    w_avg = w_samples.mean(0)  # [L, D]; every row the same for the official mapping
    # NVIDIA's spread of W: the root mean squared distance of a sample from the mean (of one style row).
    w_std = float(np.sqrt(np.sum((w_samples - w_avg) ** 2) / (len(w_samples) * w_samples.shape[1])))
    rows = 1 if space == "w" else int(Gs.num_styles)
    use_d = bool(lp is None and use_discriminator and D is not None and feature_weight > 0)
    rng = np.random.RandomState(seed)
    steps = int(steps)
    schedule = dict(w_std=w_std, initial_lr=initial_lr, initial_noise_factor=initial_noise_factor,
                    lr_rampdown=lr_rampdown, lr_rampup=lr_rampup, noise_ramp=noise_ramp)
    projector = _projector(Gs, D if use_d else None, lp, rows, feature_weight, noise_weight)
    with projector.lock:
        traces = projector.traces
        targets = projector.start(target_u8, w_avg, rng)
        losses, kept = _optimise(projector, targets, target_u8, rng, steps, schedule, frames, progress, on_step)
        w_final = projector.full_w(projector.w_var).numpy()[0]
        noise = [v.numpy() for v in projector.noise_vars]
        image_u8 = to_uint8(projector.current().numpy()[0])
        traced = projector.traces != traces
    psnr, ssim = image_metrics(image_u8, target_u8)
    result = Projection(w=w_final, noise=noise, image=image_u8, target=target_u8, psnr=psnr, ssim=ssim,
                        losses=losses, frames=np.stack(kept) if kept else None, traced=traced)
    if out_dir is not None:
        result.paths = _write(result, out_dir, overwrite, {
            "steps": len(losses), "stopped_early": len(losses) < steps, "space": space, "psnr": round(psnr, 3),
            "ssim": round(ssim, 4), "loss": ("lpips" if lp is not None else "pixel+multiscale")
            + ("+discriminator_features" if use_d else ""),
            "feature_weight": feature_weight if use_d else 0.0, "noise_weight": noise_weight,
            "initial_lr": initial_lr, "w_avg_samples": w_avg_samples, "seed": seed,
            "first_loss": losses[0], "final_loss": losses[-1],
            "loss_curve": [round(x, 6) for x in losses[:: max(1, len(losses) // 100)]],
            "image": image if isinstance(image, (str, os.PathLike)) else "array"})
    return result


def _schedule(t, w_std, initial_lr, initial_noise_factor, lr_rampdown, lr_rampup, noise_ramp):
    """(learning rate, scale of the noise added to w) at the fraction t of the steps done."""
    noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp) ** 2
    lr_ramp = min(1.0, (1.0 - t) / lr_rampdown)
    lr_ramp = 0.5 - 0.5 * math.cos(lr_ramp * math.pi)
    lr_ramp *= min(1.0, t / lr_rampup)
    return initial_lr * lr_ramp, noise_scale


def _optimise(projector, targets, target_u8, rng, steps, schedule, frames, progress, on_step):
    """Run the steps (see `project`): (losses, kept progress frames)."""
    import tensorflow as tf

    from stylegan_tf.image_grid import to_uint8
    frame_at = set(np.linspace(0, steps - 1, int(frames)).round().astype(int)) if frames else set()
    kept, losses = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc="projecting", unit="step", leave=False)
    try:
        for i in range(steps):
            lr, noise_scale = _schedule(i / steps, **schedule)
            w_noise = rng.randn(*projector.w_var.shape.as_list()).astype(np.float32) * noise_scale
            dist = projector.step(tf.constant(lr, tf.float32), tf.constant(w_noise),
                                  tf.constant(float(i + 1), tf.float32), targets)
            losses.append(float(dist))
            if i in frame_at:
                kept.append(np.concatenate([target_u8, to_uint8(projector.current().numpy()[0])], axis=1))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(dist=f"{losses[-1]:.4f}")
            if on_step is not None and on_step(i + 1, steps, {"distance": losses[-1], "learning_rate": lr}) is False:
                break
    finally:
        if bar is not None:
            bar.close()
    return losses, kept


# Projectors kept for the most recently used (network, settings): each holds its network and traced functions.
_PROJECTORS = collections.OrderedDict()
_PROJECTORS_KEPT = 4
_PROJECTORS_LOCK = threading.Lock()


def _projector(Gs, D, lp, rows, feature_weight, noise_weight):
    """The `_Projector` of these networks and static settings: made (and traced at its first step) once, then
    reused. The key holds the objects' ids; the projector holds the objects, so an id cannot be reused while its
    entry is kept."""
    key = (id(Gs), id(D), id(lp), rows, float(feature_weight) if D is not None else 0.0, float(noise_weight))
    with _PROJECTORS_LOCK:
        projector = _PROJECTORS.get(key)
        if projector is None:
            projector = _PROJECTORS[key] = _Projector(Gs, D, lp, rows, feature_weight, noise_weight)
        _PROJECTORS.move_to_end(key)
        while len(_PROJECTORS) > _PROJECTORS_KEPT:
            _PROJECTORS.popitem(last=False)
    return projector


class _Projector:
    """The optimisation state of one (network, settings) - w, the noise maps, Adam's moments - and its step and
    rendering as tf.functions. Every `project` call resets the state (`start`) and passes its target to the
    step, so the functions are traced on the first call only (the trace of a 256x256 network's step takes
    seconds on a CPU). `lock`: one projection at a time uses the state."""

    def __init__(self, Gs, D, lp, rows, feature_weight, noise_weight):
        import tensorflow as tf
        self.Gs, self.D, self.lp, self.rows = Gs, D, lp, rows
        self.feature_weight, self.noise_weight = feature_weight, noise_weight
        self.lock = threading.Lock()
        self.traces = 0  # counted in the Python bodies of the tf.functions: the times they were traced
        self.w_var = tf.Variable(tf.zeros([1, rows, Gs.dlatent_size]))
        self.noise_vars = [tf.Variable(tf.zeros(b.shape)) for b in Gs.noise_buffers()]
        self.variables = [self.w_var] + self.noise_vars
        self.adam_m = [tf.Variable(tf.zeros_like(v)) for v in self.variables]
        self.adam_v = [tf.Variable(tf.zeros_like(v)) for v in self.variables]
        self.step = tf.function(self._step, autograph=False, reduce_retracing=True)
        self.current = tf.function(self._current, autograph=False)

    def start(self, target_u8, w_avg, rng):
        """Reset the state (w at the mean, noise maps drawn from `rng`, Adam at zero) for a new target; returns
        the step's `targets` argument: (the image in [-1, 1], D's features of it, LPIPS features of it)."""
        import tensorflow as tf
        self.w_var.assign((w_avg[None, :1] if self.rows == 1 else w_avg[None]).astype(np.float32))
        for v in self.noise_vars:
            v.assign(rng.randn(*v.shape.as_list()).astype(np.float32))
        for v in self.adam_m + self.adam_v:
            v.assign(tf.zeros_like(v))
        target = tf.constant(target_u8[None].astype(np.float32) / 127.5 - 1.0)
        feats = tuple(discriminator_features(self.D, target)) if self.D is not None else ()
        lpips_feats = tuple(self.lp.features(_lpips_input(target))) if self.lp is not None else ()
        return target, feats, lpips_feats

    def full_w(self, wv):
        import tensorflow as tf
        return tf.broadcast_to(wv, [1, int(self.Gs.num_styles), wv.shape[2]]) if self.rows == 1 else wv

    def distance(self, img, targets):
        import tensorflow as tf
        target, target_feats, lpips_feats = targets
        if self.lp is not None:
            return tf.reduce_mean(self.lp.distance(_lpips_input(img), None, list(lpips_feats)))
        loss, x, t = 0.0, img, target
        while True:
            loss += tf.reduce_mean(tf.square(x - t))
            if x.shape[1] <= 8:
                break
            x, t = tf.nn.avg_pool2d(x, 2, 2, "VALID"), tf.nn.avg_pool2d(t, 2, 2, "VALID")
        if self.D is not None:
            for f, tf_ in zip(discriminator_features(self.D, img), target_feats):
                loss += self.feature_weight * tf.reduce_mean(tf.square(f - tf_)) / (tf.reduce_mean(tf.square(tf_))
                                                                                     + 1e-8)
        return loss

    def _step(self, lr, w_noise, t, targets):
        import tensorflow as tf
        self.traces += 1
        with tf.GradientTape() as tape:
            ws = self.full_w(self.w_var + w_noise)
            img = render(self.Gs.synthesis, ws, self.noise_vars)
            dist = self.distance(img, targets)
            loss = dist + self.noise_weight * _noise_regularization(tf, self.noise_vars)
        grads = tape.gradient(loss, self.variables)
        for v, g, m, s in zip(self.variables, grads, self.adam_m, self.adam_v):
            if g is None:
                continue
            m.assign(0.9 * m + 0.1 * g)
            s.assign(0.999 * s + 0.001 * g * g)
            v.assign_sub(lr * (m / (1 - 0.9 ** t)) / (tf.sqrt(s / (1 - 0.999 ** t)) + 1e-8))
        for v in self.noise_vars:  # renormalise: the maps stay unit Gaussian noise
            v.assign(v - tf.reduce_mean(v))
            v.assign(v * tf.math.rsqrt(tf.reduce_mean(tf.square(v)) + 1e-12))
        return dist

    def _current(self):
        self.traces += 1
        return render(self.Gs.synthesis, self.full_w(self.w_var), self.noise_vars)


def _lpips_input(img):
    """LPIPS sees at most 256x256 (NVIDIA's projector area-downsamples larger images)."""
    import tensorflow as tf
    if img.shape[1] > 256:
        return tf.image.resize(img, [256, 256], method="area")
    return img


def _write(result, out_dir, overwrite, meta):
    import json

    from stylegan_tf.generate.video import write_gif
    from stylegan_tf.image_grid import save_image
    names = [n for n in PROJECTION_FILES if n != "progress.gif"]  # the GIF only when there are frames
    with atomic_dir(out_dir, overwrite=overwrite, ours=PROJECTION_FILES, what="a projection") as tmp:
        np.save(os.path.join(tmp, "w.npy"), result.w.astype(np.float32))
        np.savez(os.path.join(tmp, "noise.npz"), **{f"noise{i}": n for i, n in enumerate(result.noise)})
        save_image(result.target, os.path.join(tmp, "target.png"))
        save_image(result.image, os.path.join(tmp, "reconstruction.png"))
        with open(os.path.join(tmp, "projection.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
        if result.frames is not None:
            write_gif(result.frames, os.path.join(tmp, "progress.gif"), fps=10)
            names.append("progress.gif")
    return [os.path.join(out_dir, n) for n in names]
