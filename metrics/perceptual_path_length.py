"""Perceptual path length (Karras et al. 2019, Sec. 3.3; stylegan2-ada's `ppl2_wend`), with LPIPS-VGG16.

For each sample: two latents z0, z1 ~ N(0, I) and t ~ U(0, 1) (`full`) or t = 0 (`end`). In Z, the two points
are slerp(z0, z1, t) and slerp(z0, z1, t + eps) of the normalised latents, then the mapping; in W, the mapping of
z0 and z1, then lerp of the dlatents at t and t + eps (every style row: a per-level mapping, v1..v4, moves each
level's own style). Both images of a pair get the same noise maps (drawn per pair) and the same label (drawn
from the dataset for a conditional network); no truncation, no style mixing. Optionally (`_crop`, for face
datasets) the face region rows 3/8..7/8, columns 2/8..6/8 is cut out; larger than 256 it is box-downsampled to
256. distance = LPIPS(img0, img1) / eps^2; the samples between the 1st ('lower') and 99th ('higher') percentile
are kept and averaged.

Names: `ppl_zfull`, `ppl_wfull`, `ppl_zend`, `ppl_wend` (100,000 samples, StyleGAN's), each also with `_crop`
(NVIDIA's numbers for FFHQ are these), and `ppl2_wend` (50,000 samples, no crop, stylegan2-ada's). `ppl<N>k_wend`
etc. (`ppl1k_wend`, `ppl10k_zfull_crop`) take N thousand samples: a cheap look during training, not comparable with
papers' numbers.
Architectures without W (DCGAN, MSG-GAN): the Z metrics interpolate the generator's input; the W ones are refused.
"""
import numpy as np

from stylegan_tf.metrics import metric_base

EPSILON = 1e-4
MIN_LPIPS_SIZE = 16    # VGG16 pools four times: relu5_3 is 1x1 at 16x16


def slerp(a, b, t):
    """Spherical interpolation of the normalised rows of a and b at t [N, 1] (float64): a unit vector."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    d = np.clip(np.sum(a * b, axis=-1, keepdims=True), -1.0, 1.0)
    p = t * np.arccos(d)
    c = b - d * a
    c = c / np.linalg.norm(c, axis=-1, keepdims=True)
    out = a * np.cos(p) + c * np.sin(p)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def scored_size(resolution, crop):
    """The side of the images LPIPS scores for a network of `resolution`: after the crop, at most 256."""
    side = 4 * (resolution // 8) if crop else resolution
    return side // max(1, side // 256)


def face_crop(images):
    """NHWC -> the face region NVIDIA's PPL scores on FFHQ: rows 3c..7c, columns 2c..6c with c = H // 8."""
    c = images.shape[1] // 8
    return images[:, 3 * c:7 * c, 2 * c:6 * c]


def box_downsample_to(images, size=256):
    """Average k x k blocks (k = H // size) when the images are larger than `size`, as NVIDIA's PPL does."""
    factor = images.shape[1] // size
    if factor <= 1:
        return images
    n, h, w, c = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def filtered_mean(distances):
    """Mean of the distances between the 1st ('lower') and 99th ('higher') percentiles."""
    d = np.asarray(distances, np.float64)
    lo = np.percentile(d, 1, method="lower")
    hi = np.percentile(d, 99, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


def has_w(Gs):
    """Whether the generator has StyleGAN's W (a mapping network and styles) by its architecture's declaration."""
    from stylegan_tf.networks.archs import arch_of, get_arch
    name = arch_of(Gs)
    return True if name is None else bool(get_arch(name).styles)


def draw_pairs(rng, Gs, n, full, label_pool=None):
    """One batch of `n` samples: dict z0, z1 [n, latent], t [n], labels [n, L] or None, noise (one [n, H, W, 1]
    map per noise input: both images of a pair share it). The metric draws in this order from one RandomState."""
    latent = int(Gs.latent_size)
    z0 = rng.randn(n, latent)
    z1 = rng.randn(n, latent)
    t = rng.uniform(0.0, 1.0, n) if full else np.zeros(n)
    labels = None
    if label_pool is not None:
        labels = np.asarray(label_pool, np.float32)[rng.randint(0, len(label_pool), size=n)]
    noise = [rng.randn(n, *b.shape[1:]).astype(np.float32) for b in _noise_buffers(Gs)]
    return dict(z0=z0, z1=z1, t=t, labels=labels, noise=noise)


def _noise_buffers(Gs):
    return list(Gs.noise_buffers()) if has_w(Gs) and hasattr(Gs, "noise_buffers") else []


def pair_images(Gs, draw, space, epsilon=EPSILON, batch_size=32):
    """The images at t and t + eps of each sample of `draw` (see `draw_pairs`): two NHWC float32 arrays."""
    z0, z1, t, labels = draw["z0"], draw["z1"], draw["t"][:, None], draw["labels"]
    both_labels = None if labels is None else np.concatenate([labels, labels])
    if space == "z":
        z = np.concatenate([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)]).astype(np.float32)
        if not has_w(Gs):
            # No mapping network and no noise inputs: the generator's input is the only latent space.
            images = Gs.run(z, both_labels, truncation_psi=1.0, batch_size=batch_size)
            return images[:len(z0)], images[len(z0):]
        w = Gs.map_latents(z, both_labels)
    else:
        w0, w1 = np.split(Gs.map_latents(np.concatenate([z0, z1]).astype(np.float32), both_labels), 2)
        w0, w1 = w0.astype(np.float64), w1.astype(np.float64)
        tt = t[:, :, None]
        w = np.concatenate([w0 + (w1 - w0) * tt, w0 + (w1 - w0) * (tt + epsilon)]).astype(np.float32)
    noise = [np.concatenate([m, m]) for m in draw["noise"]] or None
    images = Gs.synthesize(w, noise=noise, batch_size=batch_size) if noise else \
        Gs.synthesize(w, noise_mode="none", batch_size=batch_size)
    return images[:len(z0)], images[len(z0):]


def path_distances(Gs, lpips, draw, space, crop=False, epsilon=EPSILON, batch_size=32):
    """[n] LPIPS(img(t), img(t + eps)) / eps^2 for the samples of `draw`."""
    from stylegan_tf.metrics.inception import _full_float32
    with _full_float32():
        # Two images 1e-4 apart: TensorFloat-32's 10-bit mantissa (GPUs' default) would drown the difference.
        a, b = pair_images(Gs, draw, space, epsilon, batch_size)
    if crop:
        a, b = face_crop(a), face_crop(b)
    a, b = box_downsample_to(a), box_downsample_to(b)
    return lpips.distances(a, b, batch_size) / epsilon ** 2


class PPL(metric_base.Metric):
    """ppl_{z,w}{full,end}[_crop] and ppl2_wend: see the module docstring."""

    uses_lpips = True

    def __init__(self, name, space, full, crop, num_images):
        super().__init__(name)
        self.space, self.full, self.crop, self.num_images = space, full, crop, num_images

    def evaluate(self, ctx):
        Gs = ctx.Gs
        if self.space == "w" and not has_w(Gs):
            from stylegan_tf.networks.archs import arch_of
            raise metric_base.MetricError(f"{self.name}: --arch {arch_of(Gs)} has no intermediate latent space W "
                                          f"(no mapping network); use {self.name.replace('_w', '_z')}")
        scored = scored_size(int(Gs.resolution), self.crop)
        if scored < MIN_LPIPS_SIZE:
            # VGG16's fifth stage follows four 2x2 max pools: below 16x16 it has no pixels left.
            raise metric_base.MetricError(
                f"{self.name}: LPIPS needs images of {MIN_LPIPS_SIZE}x{MIN_LPIPS_SIZE} or more; a "
                f"{Gs.resolution}x{Gs.resolution} network gives {scored}x{scored}"
                + (" after the face crop (use it on 32x32 or larger)" if self.crop else ""))
        lpips = ctx.lpips()
        num = ctx.num_override or self.num_images
        rng = np.random.RandomState(ctx.seed)
        pool = ctx.dataset.labels if getattr(Gs, "label_size", 0) else None
        pairs_per_batch = max(1, ctx.batch_size // 2)
        distances = []
        with ctx.bar(num, f"{self.name}: pairs", unit="pair") as bar:
            for start in range(0, num, pairs_per_batch):
                n = min(pairs_per_batch, num - start)
                draw = draw_pairs(rng, Gs, n, self.full, pool)
                distances.append(path_distances(Gs, lpips, draw, self.space, self.crop, EPSILON, ctx.batch_size))
                bar.update(n)
        return {self.name: filtered_mean(np.concatenate(distances))}


@metric_base.register(r"ppl(?:(\d+)k)?_(z|w)(full|end)(_crop)?",
                      example="ppl_wend, ppl_zfull, ppl_wend_crop, ppl1k_wend",
                      names=[f"ppl_{s}{p}{c}" for c in ("", "_crop") for s in "zw" for p in ("full", "end")])
def _make(name, match):
    num = 100000 if match.group(1) is None else int(match.group(1)) * 1000
    return PPL(name, match.group(2), match.group(3) == "full", bool(match.group(4)), num)


@metric_base.register(r"ppl2_wend", example="ppl2_wend", names=["ppl2_wend"])
def _make2(name, match):
    return PPL(name, "w", False, False, 50000)
