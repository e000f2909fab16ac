"""Feature-map counts per stage: nf(stage) = min(int(fmap_base / 2**(stage*fmap_decay)), fmap_max)."""
import numpy as np


def nf(stage, fmap_base=8192, fmap_decay=1.0, fmap_max=512):
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def resolution_log2(resolution):
    r = int(np.log2(resolution)) if resolution and resolution > 0 else -1
    if resolution != 2 ** r or resolution < 4:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    return r
