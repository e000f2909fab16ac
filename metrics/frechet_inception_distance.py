"""Frechet Inception Distance (Heusel et al. 2017) as NVIDIA's StyleGAN computes it.

`fid50k`: 50,000 generated images (no truncation, random noise, quantised like the original) against the
first 50,000 real images in TFRecord order (randomly mirrored if training mirrored; a dataset with fewer
images is cycled through, as NVIDIA's looping reader does). `fid<N>k` for other counts; `fid<N>k_full`
uses every real image once. Statistics are float64, covariance `np.cov` (ddof 1).
"""
import numpy as np

from stylegan_tf.metrics import metric_base


def feature_statistics(features):
    """(mean, covariance) of [N, D] features in float64; covariance is np.cov's unbiased one (ddof 1)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors to estimate a covariance, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def trace_sqrt_product(sigma1, sigma2):
    """tr(sqrtm(sigma1 @ sigma2)) for symmetric PSD matrices, stably and in real arithmetic.

    sigma1 @ sigma2 is similar to S = sqrt(sigma1) sigma2 sqrt(sigma1), which is symmetric PSD, so the
    trace of its square root is the sum of the square roots of S's eigenvalues (clipped at 0 against
    round-off). This avoids `scipy.linalg.sqrtm`'s complex results and its removed `disp` argument.
    """
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    s = root1 @ s2 @ root1
    ev = np.linalg.eigvalsh((s + s.T) / 2)
    return float(np.sqrt(np.clip(ev, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different sizes: {mu1.shape} vs {mu2.shape}")
    diff = np.square(mu1 - mu2).sum()
    return float(diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


def fid_from_features(features1, features2):
    """FID between two [N, D] feature sets."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


class FID(metric_base.Metric):
    """fid<N>k[_full]: N thousand fakes against N thousand reals (or, with `_full`, all reals)."""

    def __init__(self, name, num_images, full_reals=False):
        super().__init__(name)
        self.num_images = num_images
        self.full_reals = full_reals

    def evaluate(self, ctx):
        net = ctx.inception()
        num = ctx.num_override or self.num_images
        num_reals = None if self.full_reals else num

        def real_stats():
            return dict(zip(("mu", "sigma"), feature_statistics(ctx.real_features(num_reals))))

        stats = ctx.cached("fid-stats", dict(num_reals=num_reals), real_stats)
        mu_fake, sigma_fake = feature_statistics(ctx.fake_features(num))
        return {self.name: frechet_distance(mu_fake, sigma_fake, stats["mu"], stats["sigma"])}


@metric_base.register(r"fid(\d+)k(_full)?", example="fid50k, fid10k, fid50k_full")
def _make(name, match):
    return FID(name, int(match.group(1)) * 1000, full_reals=bool(match.group(2)))
