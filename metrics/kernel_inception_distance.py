"""Kernel Inception Distance (Binkowski et al. 2018) with NVIDIA's estimator (stylegan2-ada, clean-fid).

Cubic polynomial kernel k(x, y) = (x.y / d + 1)^3; the unbiased MMD^2 estimate is averaged over 100
random subsets of m = min(n_real, n_fake, 1000) vectors drawn without replacement from each side.
`kid50k` = 50,000 fakes against the first 50,000 reals; `kid<N>k_full` uses every real image.
"""
import numpy as np

from stylegan_tf.metrics import metric_base

NUM_SUBSETS = 100
MAX_SUBSET_SIZE = 1000


def kernel_inception_distance(real_features, fake_features, num_subsets=NUM_SUBSETS,
                              max_subset_size=MAX_SUBSET_SIZE, seed=0):
    """KID between two [N, D] feature sets. Float64 throughout (NVIDIA's code uses float32 products,
    a ~1e-6 relative difference); `seed` fixes the subsets."""
    real = np.asarray(real_features, dtype=np.float64)
    fake = np.asarray(fake_features, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be [N, D] with the same D, got {real.shape} and {fake.shape}")
    d = real.shape[1]
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 feature vectors on each side")
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(total / num_subsets / m)


class KID(metric_base.InceptionMetric):
    """kid<N>k[_full]: NVIDIA's KID estimator on N thousand fakes against N thousand reals (or all reals)."""

    def evaluate(self, ctx):
        ctx.inception()
        num, num_reals = self.counts(ctx)
        # KID needs the features themselves, not just their moments: cache them (float32).
        reals = ctx.cached("kid-features", dict(num_reals=num_reals),
                           lambda: {"features": ctx.real_features(num_reals).astype(np.float32)})["features"]
        return {self.name: kernel_inception_distance(reals, ctx.fake_features(num), seed=ctx.seed)}


@metric_base.register(r"kid(\d+)k(_full)?", example="kid50k, kid10k, kid50k_full",
                      names=[f"kid{n}k{s}" for s in ("", "_full") for n in (1, 2, 5, 10, 20, 50)])
def _make(name, match):
    return KID(name, int(match.group(1)) * 1000, full_reals=bool(match.group(2)))
