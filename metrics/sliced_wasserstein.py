"""Multi-scale sliced Wasserstein distance (Karras et al. 2018, "Progressive Growing of GANs", appendix D).

Each image is decomposed into a Laplacian pyramid (from full resolution down to 16x16). From every level,
128 random 7x7 neighbourhoods per image become descriptors, normalised per colour channel over the whole
set. Between the real and the fake descriptors of a level, the sliced Wasserstein distance is the mean
absolute difference of the sorted projections on random unit directions (4 repeats of 128 directions,
512 in all). Reported per level and averaged, multiplied by 1e3, as ProGAN does. Needs no pretrained
weights, so it runs offline and in CI. `swd16k` uses 16,384 images per side (2^14, as the paper).
"""
import numpy as np
from scipy import ndimage

from stylegan_tf.metrics import metric_base

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
# The 5-tap binomial filter of cv2.pyrDown / pyrUp, applied separably.
_BINOMIAL = np.float32([1, 4, 6, 4, 1]) / 16.0


def _blur(x, gain=1.0):
    # 'mirror' reflects about the edge pixel without repeating it, like cv2's default border.
    k = _BINOMIAL * gain
    x = ndimage.convolve1d(x, k, axis=1, mode="mirror")
    return ndimage.convolve1d(x, k, axis=2, mode="mirror")


def pyr_down(x):
    """[N, H, W, C] float -> [N, H/2, W/2, C]: binomial blur, then every second pixel."""
    return _blur(x)[:, ::2, ::2]


def pyr_up(x):
    """[N, H, W, C] float -> [N, 2H, 2W, C]: zero insertion, then the blur with gain 4."""
    n, h, w, c = x.shape
    up = np.zeros((n, 2 * h, 2 * w, c), dtype=x.dtype)
    up[:, ::2, ::2] = x
    return _blur(up, gain=2.0)  # 2 per axis = 4 in all


def laplacian_pyramid(images, num_levels):
    """uint8 / float NHWC images -> list of float32 levels, finest first; the last level is the low-pass."""
    pyramid = [np.asarray(images, dtype=np.float32)]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def reconstruct_laplacian_pyramid(pyramid):
    """The inverse of `laplacian_pyramid` (exact up to float round-off)."""
    x = pyramid[-1]
    for level in pyramid[-2::-1]:
        x = pyr_up(x) + level
    return x


def neighbourhood_positions(num, height, width, rng, nhood_size=NHOOD_SIZE):
    """Random centres (y, x) of `num` neighbourhoods that fit inside a height x width level."""
    half = nhood_size // 2
    xs = rng.randint(half, width - half, size=num).astype(np.int32)
    ys = rng.randint(half, height - half, size=num).astype(np.int32)
    return ys, xs


def neighbourhood_descriptors(level, ys, xs, nhoods_per_image=NHOODS_PER_IMAGE, nhood_size=NHOOD_SIZE):
    """Patches of one pyramid level [N, H, W, C] around the centres (ys, xs), nhoods_per_image per image,
    image by image -> [N * nhoods_per_image, size, size, C]."""
    half = nhood_size // 2
    count = level.shape[0] * nhoods_per_image
    img = np.arange(count)[:, None, None] // nhoods_per_image
    offsets = np.arange(-half, half + 1)
    return level[img, ys[:count, None, None] + offsets[None, :, None], xs[:count, None, None] + offsets[None, None, :]]


def normalize_descriptors(desc):
    """Zero mean and unit variance per colour channel over the whole set, flattened to [M, size*size*C]."""
    desc = np.asarray(desc, dtype=np.float32)
    desc = desc - desc.mean(axis=(0, 1, 2), keepdims=True)
    desc = desc / desc.std(axis=(0, 1, 2), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a, b, rng, dir_repeats=DIR_REPEATS, dirs_per_repeat=DIRS_PER_REPEAT):
    """Sliced Wasserstein distance between two equally sized [M, D] descriptor sets."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same shape, got {a.shape} and {b.shape}")
    results = []
    for _ in range(dir_repeats):
        dirs = rng.randn(a.shape[1], dirs_per_repeat)
        dirs /= np.sqrt(np.square(dirs).sum(axis=0, keepdims=True))
        dirs = dirs.astype(np.float32)
        # Sorting each direction's projections along a contiguous axis is several times faster.
        proj_a = np.sort((a @ dirs).T, axis=1)
        proj_b = np.sort((b @ dirs).T, axis=1)
        results.append(np.abs(proj_a - proj_b).mean())
    return float(np.mean(results))


def pyramid_resolutions(resolution):
    res, out = int(resolution), []
    while res >= MIN_RESOLUTION:
        out.append(res)
        res //= 2
    return out


class DescriptorSet:
    """Accumulates the descriptors of one image set, batch by batch, for every pyramid level.

    Reals and fakes draw their neighbourhood positions from the same seed (ProGAN drew them from one
    running generator): positions do not depend on the images, so this adds no bias, lowers the
    variance, and makes the SWD of two identical sets exactly 0.
    """

    def __init__(self, num_images, resolution, num_channels, seed):
        self.resolutions = pyramid_resolutions(resolution)
        if not self.resolutions:
            raise ValueError(f"SWD needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION}, got {resolution}")
        rows = num_images * NHOODS_PER_IMAGE
        self.levels = [np.empty((rows, NHOOD_SIZE, NHOOD_SIZE, num_channels), np.float32) for _ in self.resolutions]
        # Positions are drawn up front, per image index, so they do not depend on how images are batched.
        rng = np.random.RandomState(seed)
        self.positions = [neighbourhood_positions(rows, r, r, rng) for r in self.resolutions]
        self.filled = 0

    def add(self, images):
        images = np.asarray(images)
        rows = images.shape[0] * NHOODS_PER_IMAGE
        if self.filled + rows > self.levels[0].shape[0]:
            raise ValueError("more images than the descriptor set was sized for")
        sl = slice(self.filled, self.filled + rows)
        for level, arr, (ys, xs) in zip(laplacian_pyramid(images, len(self.resolutions)), self.levels, self.positions):
            arr[sl] = neighbourhood_descriptors(level, ys[sl], xs[sl])
        self.filled += rows

    def finalize(self):
        return [normalize_descriptors(arr[:self.filled]) for arr in self.levels]


def swd_from_descriptors(real_levels, fake_levels, resolutions, seed=0):
    """{resolution: SWD x 1e3} per level, plus 'avg'."""
    rng = np.random.RandomState(seed)
    dist = [sliced_wasserstein(r, f, rng) * 1e3 for r, f in zip(real_levels, fake_levels)]
    out = {res: d for res, d in zip(resolutions, dist)}
    out["avg"] = float(np.mean(dist))
    return out


def swd(real_images, fake_images, seed=0):
    """SWD x 1e3 per level between two uint8 NHWC image sets of the same size (one call, in memory)."""
    real_images, fake_images = np.asarray(real_images), np.asarray(fake_images)
    if real_images.shape != fake_images.shape:
        raise ValueError(f"image sets differ in shape: {real_images.shape} vs {fake_images.shape}")
    n, res, _, c = real_images.shape
    sets = []
    for images in (real_images, fake_images):
        s = DescriptorSet(n, res, c, seed=seed)
        s.add(images)
        sets.append(s)
    return swd_from_descriptors(sets[0].finalize(), sets[1].finalize(), sets[0].resolutions, seed)


class SWD(metric_base.Metric):
    def __init__(self, name, num_images):
        super().__init__(name)
        self.num_images = num_images

    def evaluate(self, ctx):
        num = ctx.num_override or self.num_images
        res, channels = ctx.resolution, ctx.num_channels
        # Descriptors are not cached on disk: 128 x 147 floats per image and level would be gigabytes.
        sets = []
        for batches in (ctx.iterate_reals(num, what=self.name), ctx.iterate_fakes(num, what=self.name)):
            s = DescriptorSet(num, res, channels, seed=ctx.seed)
            for images in batches:
                s.add(images)
            sets.append(s)
        dist = swd_from_descriptors(sets[0].finalize(), sets[1].finalize(), sets[0].resolutions, ctx.seed)
        return {f"{self.name}_{k}": v for k, v in dist.items()}


@metric_base.register(r"swd(\d+)k", example="swd16k, swd2k", names=[f"swd{n}k" for n in (1, 2, 4, 8, 16)])
def _make(name, match):
    # ProGAN's "16k" is 2^14 = 16,384 images.
    return SWD(name, int(match.group(1)) * 1024)
