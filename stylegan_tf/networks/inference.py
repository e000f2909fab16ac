"""Shared helpers for the numpy-in/numpy-out inference API (level choice from lod, batching)."""
import math

import numpy as np


def level_for_lod(lod, max_level):
    """Static structure for a concrete lod: (level, fade). Fade is off when the lower path has weight 0."""
    lod = float(lod)
    if not np.isfinite(lod):
        raise ValueError(f"lod must be a finite number, got {lod}")
    level = int(min(max(math.floor(lod), 0), max_level))
    return level, bool(level < max_level and lod - level > 0)


def batched(fn, arrays, batch_size):
    """Run `fn(*batch)` over the first axis of `arrays` in chunks; concatenates numpy results."""
    n = arrays[0].shape[0]
    if n == 0:
        return None
    batch_size = max(int(batch_size), 1)
    outs = []
    for start in range(0, n, batch_size):
        outs.append(np.asarray(fn(*[a[start:start + batch_size] if a is not None else None for a in arrays])))
    return np.concatenate(outs, axis=0)
