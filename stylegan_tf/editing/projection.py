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
import dataclasses
import math
import os

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
    psnr (dB), ssim, losses (per step), frames (uint8 [F, H, 2W, C]: target | current), paths written."""
    w: np.ndarray
    noise: list
    image: np.ndarray
    target: np.ndarray
    psnr: float
    ssim: float
    losses: list
    frames: np.ndarray = None
    paths: list = dataclasses.field(default_factory=list)


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
            progress=True, max_pixels=None):
    """Find w (and noise maps) reproducing `image`; with `out_dir`, write w.npy, noise.npz, target.png,
    reconstruction.png, progress.gif and projection.json there (all or nothing).

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

    Example:
        p = project("net.keras", "photo.png", out_dir="proj", steps=500)
        print(p.psnr, p.ssim)  # then: edit(..., w="proj/w.npy")
    """
    import keras
    import tensorflow as tf

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
    target = tf.constant(target_u8[None].astype(np.float32) / 127.5 - 1.0)

    _, w_samples = sample_w(Gs, w_avg_samples, seed)
    w_samples = w_samples.astype(np.float64)
    w_avg = w_samples.mean(0)  # [L, D]; every row the same for the official mapping
    # NVIDIA's spread of W: the root mean squared distance of a sample from the mean (of one style row).
    w_std = float(np.sqrt(np.sum((w_samples - w_avg) ** 2) / (len(w_samples) * w_samples.shape[1])))
    L = int(Gs.num_styles)
    rows = 1 if space == "w" else L
    w_var = tf.Variable((w_avg[None, :1] if rows == 1 else w_avg[None]).astype(np.float32))
    rng = np.random.RandomState(seed)
    buffers = Gs.noise_buffers()
    noise_vars = [tf.Variable(rng.randn(*b.shape).astype(np.float32)) for b in buffers]
    variables = [w_var] + noise_vars
    adam_m = [tf.Variable(tf.zeros_like(v)) for v in variables]
    adam_v = [tf.Variable(tf.zeros_like(v)) for v in variables]
    use_d = bool(lp is None and use_discriminator and D is not None and feature_weight > 0)
    target_feats = [tf.constant(f) for f in discriminator_features(D, target)] if use_d else []

    def lpips_input(img):
        if img.shape[1] > 256:
            return tf.image.resize(img, [256, 256], method="area")
        return img

    lpips_target = [tf.constant(f) for f in lp.features(lpips_input(target))] if lp is not None else None

    def distance(img):
        if lp is not None:
            return tf.reduce_mean(lp.distance(lpips_input(img), None, lpips_target))
        loss, x, t = 0.0, img, target
        while True:
            loss += tf.reduce_mean(tf.square(x - t))
            if x.shape[1] <= 8:
                break
            x, t = tf.nn.avg_pool2d(x, 2, 2, "VALID"), tf.nn.avg_pool2d(t, 2, 2, "VALID")
        if use_d:
            for f, tf_ in zip(discriminator_features(D, img), target_feats):
                loss += feature_weight * tf.reduce_mean(tf.square(f - tf_)) / (tf.reduce_mean(tf.square(tf_)) + 1e-8)
        return loss

    def full_w(wv):
        return tf.broadcast_to(wv, [1, L, wv.shape[2]]) if rows == 1 else wv

    @tf.function(autograph=False, reduce_retracing=True)
    def step(lr, w_noise, t):
        with tf.GradientTape() as tape:
            ws = full_w(w_var + w_noise)
            img = render(Gs.synthesis, ws, noise_vars)
            dist = distance(img)
            loss = dist + noise_weight * _noise_regularization(tf, noise_vars)
        grads = tape.gradient(loss, variables)
        for v, g, m, s in zip(variables, grads, adam_m, adam_v):
            if g is None:
                continue
            m.assign(0.9 * m + 0.1 * g)
            s.assign(0.999 * s + 0.001 * g * g)
            v.assign_sub(lr * (m / (1 - 0.9 ** t)) / (tf.sqrt(s / (1 - 0.999 ** t)) + 1e-8))
        for v in noise_vars:  # renormalise: the maps stay unit Gaussian noise
            v.assign(v - tf.reduce_mean(v))
            v.assign(v * tf.math.rsqrt(tf.reduce_mean(tf.square(v)) + 1e-12))
        return dist

    @tf.function(autograph=False)
    def current():
        return render(Gs.synthesis, full_w(w_var), noise_vars)

    steps = int(steps)
    frame_at = set(np.linspace(0, steps - 1, int(frames)).round().astype(int)) if frames else set()
    kept, losses = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc="projecting", unit="step", leave=False)
    for i in range(steps):
        t = i / steps
        noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown)
        lr_ramp = 0.5 - 0.5 * math.cos(lr_ramp * math.pi)
        lr_ramp *= min(1.0, t / lr_rampup)
        w_noise = rng.randn(1, rows, Gs.dlatent_size).astype(np.float32) * noise_scale
        dist = step(tf.constant(initial_lr * lr_ramp, tf.float32), tf.constant(w_noise),
                    tf.constant(float(i + 1), tf.float32))
        losses.append(float(dist))
        if i in frame_at:
            kept.append(np.concatenate([target_u8, to_uint8(current().numpy()[0])], axis=1))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(dist=f"{losses[-1]:.4f}")
    if bar is not None:
        bar.close()
    w_final = full_w(w_var).numpy()[0]
    noise = [v.numpy() for v in noise_vars]
    image_u8 = to_uint8(current().numpy()[0])
    psnr, ssim = image_metrics(image_u8, target_u8)
    result = Projection(w=w_final, noise=noise, image=image_u8, target=target_u8, psnr=psnr, ssim=ssim,
                        losses=losses, frames=np.stack(kept) if kept else None)
    if out_dir is not None:
        result.paths = _write(result, out_dir, overwrite, {
            "steps": steps, "space": space, "psnr": round(psnr, 3), "ssim": round(ssim, 4),
            "loss": ("lpips" if lp is not None else "pixel+multiscale")
            + ("+discriminator_features" if use_d else ""),
            "feature_weight": feature_weight if use_d else 0.0, "noise_weight": noise_weight,
            "initial_lr": initial_lr, "w_avg_samples": w_avg_samples, "seed": seed,
            "first_loss": losses[0], "final_loss": losses[-1],
            "loss_curve": [round(x, 6) for x in losses[:: max(1, steps // 100)]],
            "image": image if isinstance(image, (str, os.PathLike)) else "array"})
    return result


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
