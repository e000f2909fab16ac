"""ADA's heuristic for the augmentation strength p: the overfitting indicator r_t = E[sign(D(reals))] over the
last `interval` minibatches; p moves by sign(r_t - target) * N * interval / (ada_kimg * 1000), clipped to [0, 1]
(N the minibatch size): ada_kimg thousand images take p from 0 to 1 while D keeps overfitting."""
import dataclasses

import numpy as np

DEFAULT_TARGET = 0.6
DEFAULT_KIMG = 500
DEFAULT_INTERVAL = 4


def adjust_p(p, r_t, target, batch_size, interval, ada_kimg):
    """The next p from the current one and the indicator r_t (pure: numbers in, a float out).

    Example:
        >>> adjust_p(0.0, r_t=0.9, target=0.6, batch_size=32, interval=4, ada_kimg=500)
        0.000256
    """
    step = np.sign(r_t - target) * batch_size * interval / (ada_kimg * 1000)
    return float(np.clip(p + step, 0.0, 1.0))


@dataclasses.dataclass
class AdaptiveP:
    """p and the signs of D's real scores gathered since the last adjustment.

    `observe(real_scores)` after each minibatch's D step; every `interval` minibatches it adjusts p and returns
    the r_t it used (else None). `p` and the pending sums are plain numbers: `as_dict` / `from_dict` put them in
    a snapshot.

    Example:
        >>> ada = AdaptiveP(p=0.0, target=0.6)
        >>> for scores in d_real_scores_per_minibatch:
        ...     r_t = ada.observe(scores)
    """
    p: float = 0.0
    target: float = DEFAULT_TARGET
    ada_kimg: float = DEFAULT_KIMG
    interval: int = DEFAULT_INTERVAL
    sign_sum: float = 0.0
    sign_count: int = 0
    minibatches: int = 0

    def observe(self, real_scores):
        scores = np.asarray(real_scores, np.float64).reshape(-1)
        self.sign_sum += float(np.sign(scores).sum())
        self.sign_count += scores.size
        self.minibatches += 1
        if self.minibatches % self.interval:
            return None
        r_t = self.sign_sum / max(self.sign_count, 1)
        # ADA's step counts the images seen since the last adjustment: N * interval for a fixed minibatch.
        self.p = adjust_p(self.p, r_t, self.target, self.sign_count / self.interval, self.interval, self.ada_kimg)
        self.sign_sum, self.sign_count = 0.0, 0
        return r_t

    def as_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state):
        return cls(**{f.name: state[f.name] for f in dataclasses.fields(cls) if f.name in state})
