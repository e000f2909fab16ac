"""Improved precision and recall (Kynkaanniemi et al. 2019) as stylegan2-ada's `pr50k3` computes them.

VGG16 fc2 features (`metrics/vgg16.py`) of N reals and N fakes. Each set spans a manifold: the union of balls
around its points, each of radius the distance to its k-th nearest neighbour in the set (the point itself not
counted). precision = the fraction of fakes inside the reals' manifold; recall = the fraction of reals inside
the fakes' manifold. Distances are Euclidean, computed in blocks so that 50k x 50k never sits in memory at once.

Names: `pr<N>k<k>` (`pr50k3`: 50,000 each, k = 3; keys `pr50k3_precision`, `pr50k3_recall`) and
`pr<N>k<k>_full` (every real image once, as stylegan2-ada's `pr50k3_full` up to its 200,000-image cap).
"""
import numpy as np

from stylegan_tf.metrics import metric_base

BLOCK_ELEMENTS = 1 << 24   # distances per block (float64: 128 MiB each for the few arrays of a block)


def _distances(rows, cols):
    """Euclidean distances [len(rows), len(cols)] in float64 (|a|^2 + |b|^2 - 2ab, clipped at 0)."""
    d2 = np.sum(rows * rows, 1)[:, None] + np.sum(cols * cols, 1)[None, :] - 2.0 * rows @ cols.T
    return np.sqrt(np.maximum(d2, 0.0))


def _row_blocks(n_rows, n_cols, block_elements):
    step = max(1, block_elements // max(1, n_cols))
    return range(0, n_rows, step), step


def kth_neighbour_radii(manifold, k, block_elements=BLOCK_ELEMENTS):
    """[N] distance of each point to its k-th nearest neighbour in `manifold` (itself, at 0, not counted)."""
    x = np.asarray(manifold, np.float64)
    if len(x) <= k:
        raise ValueError(f"precision/recall with k = {k} needs more than {k} feature vectors per side, got {len(x)}")
    starts, step = _row_blocks(len(x), len(x), block_elements)
    # The (k+1)-th smallest distance of a row: its own 0 comes first.
    return np.concatenate([np.partition(_distances(x[s:s + step], x), k, axis=1)[:, k] for s in starts])


def coverage(manifold, radii, probes, block_elements=BLOCK_ELEMENTS):
    """Fraction of `probes` within distance radii[j] of some manifold point j (boundary included)."""
    x, p = np.asarray(manifold, np.float64), np.asarray(probes, np.float64)
    starts, step = _row_blocks(len(p), len(x), block_elements)
    inside = [np.any(_distances(p[s:s + step], x) <= radii[None, :], axis=1) for s in starts]
    return float(np.mean(np.concatenate(inside)))


def precision_recall(real_features, fake_features, k=3, block_elements=BLOCK_ELEMENTS):
    """(precision, recall) of fakes against reals, both [N, D] feature arrays."""
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be [N, D] with the same D, got {real.shape} and {fake.shape}")
    precision = coverage(real, kth_neighbour_radii(real, k, block_elements), fake, block_elements)
    recall = coverage(fake, kth_neighbour_radii(fake, k, block_elements), real, block_elements)
    return precision, recall


class PrecisionRecall(metric_base.Metric):
    """pr<N>k<k>[_full]: precision and recall of N fakes against N reals (or every real) on VGG16 fc2 features."""

    uses_vgg16 = True

    def __init__(self, name, num_images, k, full_reals=False):
        super().__init__(name)
        self.num_images, self.k, self.full_reals = num_images, k, full_reals

    def evaluate(self, ctx):
        net, key = ctx.vgg16()
        num = ctx.num_override or self.num_images
        num_reals = None if self.full_reals else num

        def features(batches):
            return np.concatenate([net.fc2_features(b, batch_size=ctx.batch_size) for b in batches], axis=0)

        reals = ctx.cached("pr-vgg16-features", dict(num_reals=num_reals),
                           lambda: {"features": features(ctx.iterate_reals(num_reals, "vgg16"))},
                           detector=key)["features"]
        fakes = features(ctx.iterate_fakes(num, "vgg16"))
        precision, recall = precision_recall(reals, fakes, self.k)
        return {f"{self.name}_precision": precision, f"{self.name}_recall": recall}


@metric_base.register(r"pr(\d+)k(\d+)(_full)?", example="pr50k3, pr10k3, pr50k3_full",
                      names=["pr50k3", "pr10k3", "pr50k3_full"])
def _make(name, match):
    return PrecisionRecall(name, int(match.group(1)) * 1000, int(match.group(2)), full_reals=bool(match.group(3)))
