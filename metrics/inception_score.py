"""Inception Score (Salimans et al. 2016) as TTUR's and stylegan2-ada's `is50k` compute it.

The class probabilities are the softmax of FID-Inception's 1008 logits taken without the output bias
(pool_3 features times the fc weights: the original implementation's `softmax/logits/MatMul`). The N fakes are cut
into 10 consecutive splits; each split's score is exp(mean_i KL(p(y|x_i) || p(y))) with p(y) the split's mean.
Keys: `is50k_mean` and `is50k_std` (the mean and standard deviation over the splits). The fakes' features are
shared with FID and KID in one call (`fid50k,is50k` generates and extracts once).
"""
import keras
import numpy as np
from scipy.special import xlogy

from stylegan_tf.metrics import metric_base

NUM_SPLITS = 10


def class_probabilities(logits):
    """Softmax over the last axis, in float64."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def inception_score(probs, num_splits=NUM_SPLITS):
    """(mean, std) over `num_splits` consecutive splits of [N, C] class probabilities."""
    p = np.asarray(probs, np.float64)
    n = len(p)
    if n < num_splits:
        raise ValueError(f"the Inception Score needs at least {num_splits} images ({num_splits} splits), got {n}")
    scores = []
    for i in range(num_splits):
        part = p[i * n // num_splits:(i + 1) * n // num_splits]
        # xlogy: a class of probability 0 (softmax underflows in float64 beyond ~745 logits apart) adds 0 * log 0
        # = 0 to the KL divergence, as the limit says, not NaN.
        kl = xlogy(part, part) - xlogy(part, part.mean(axis=0, keepdims=True))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore(metric_base.InceptionMetric):
    """is<N>k: the Inception Score of N fakes."""

    def evaluate(self, ctx):
        net = ctx.inception()
        num, _ = self.counts(ctx)
        fc = getattr(getattr(net, "model", None), "get_layer", None)
        if fc is None:
            raise metric_base.MetricError(f"{self.name}: needs FID-Inception's classifier (not available with "
                                          "--inception keras-applications)")
        kernel = keras.ops.convert_to_numpy(fc("fc").kernel).astype(np.float64)     # [2048, 1008]
        mean, std = inception_score(class_probabilities(ctx.fake_features(num) @ kernel))
        return {f"{self.name}_mean": mean, f"{self.name}_std": std}


@metric_base.register(r"is(\d+)k", example="is50k, is10k", names=["is50k", "is10k"])
def _make(name, match):
    return InceptionScore(name, int(match.group(1)) * 1000)
