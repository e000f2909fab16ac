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


def _sum_sqrt_eigenvalues(s):
    ev = np.linalg.eigvalsh((s + s.T) / 2)
    # Eigenvalues at round-off level are zeros that came out as +-1e-16; their square roots (1e-8 each)
    # would add up over the null space of a rank-deficient covariance (fewer samples than dimensions).
    ev[ev < ev.max(initial=0.0) * len(ev) * np.finfo(np.float64).eps] = 0.0
    return float(np.sqrt(ev).sum())


def trace_sqrt_product(sigma1, sigma2):
    """tr(sqrtm(sigma1 @ sigma2)) for symmetric PSD matrices, stably and in real arithmetic.

    sigma1 @ sigma2 is similar to S = R' sigma2 R for any R with R R' = sigma1 (a Cholesky factor, or the
    symmetric square root when sigma1 is singular); S is symmetric PSD, so the trace of the square root is
    the sum of the square roots of S's eigenvalues (round-off negatives clipped to 0). This avoids
    `scipy.linalg.sqrtm`'s complex results and its removed `disp` argument.
    """
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    s1 = (s1 + s1.T) / 2
    try:
        # Positive definite (the usual case, N > D): with s1 = L L', s1 s2 is similar to L' s2 L.
        # A Cholesky factor costs a fraction of an eigendecomposition.
        root1 = np.linalg.cholesky(s1)
        return _sum_sqrt_eigenvalues(root1.T @ s2 @ root1)
    except np.linalg.LinAlgError:
        # Singular (fewer samples than dimensions): the symmetric square root always exists.
        w, v = np.linalg.eigh(s1)
        root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        return _sum_sqrt_eigenvalues(root1 @ s2 @ root1)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different sizes: {mu1.shape} vs {mu2.shape}")
    diff = np.square(mu1 - mu2).sum()
    return float(diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


def frechet_distance_from_features(features, mu2, sigma2):
    """FID between [N, D] features and statistics (mu2, sigma2), as `frechet_distance`.

    With fewer samples than dimensions (quick runs, tests), sigma1 = Xc'Xc/(N-1) has rank < N and
    sigma1 sigma2 is similar to Xc sigma2 Xc'/(N-1), an N x N matrix: same value, no D x D decompositions.
    """
    x = np.asarray(features, dtype=np.float64)
    mu2, sigma2 = np.asarray(mu2, np.float64), np.asarray(sigma2, np.float64)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors to estimate a covariance, got shape {x.shape}")
    if n > d:
        return frechet_distance(*feature_statistics(x), mu2, sigma2)
    mu1 = x.mean(axis=0)
    xc = x - mu1
    trace1 = np.square(xc).sum() / (n - 1)
    tr_sqrt = _sum_sqrt_eigenvalues(xc @ sigma2 @ xc.T / (n - 1))
    return float(np.square(mu1 - mu2).sum() + trace1 + np.trace(sigma2) - 2.0 * tr_sqrt)


def fid_from_features(features1, features2):
    """FID between two [N, D] feature sets."""
    return frechet_distance_from_features(features1, *feature_statistics(features2))


class FID(metric_base.InceptionMetric):
    """fid<N>k[_full]: N thousand fakes against N thousand reals (or, with `_full`, all reals)."""

    def evaluate(self, ctx):
        net = ctx.inception()
        num, num_reals = self.counts(ctx)

        def real_stats():
            return dict(zip(("mu", "sigma"), feature_statistics(ctx.real_features(num_reals))))

        stats = ctx.cached("fid-stats", dict(num_reals=num_reals), real_stats)
        return {self.name: frechet_distance_from_features(ctx.fake_features(num), stats["mu"], stats["sigma"])}


@metric_base.register(r"fid(\d+)k(_full)?", example="fid50k, fid10k, fid50k_full",
                      names=[f"fid{n}k{s}" for s in ("", "_full") for n in (1, 2, 5, 10, 20, 50)])
def _make(name, match):
    return FID(name, int(match.group(1)) * 1000, full_reals=bool(match.group(2)))
