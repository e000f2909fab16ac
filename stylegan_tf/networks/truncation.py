"""Truncation trick: w' = avg + psi * (w - avg) on layers < cutoff (None = all layers); inference only."""
import numpy as np
from keras import ops


def truncate(w, dlatent_avg, psi, cutoff=None):
    """w [N, num_layers, D]. Layers at or above `cutoff` are returned untouched (exactly w), and so is every
    layer when `psi` is the Python number 1 (avg + (w - avg) * 1 can differ from w in the last bit).
    `dlatent_avg` is [D] (the official mapping's one average w) or [num_layers, D] (a per-level mapping,
    v1..v4: each level is pulled towards its own average; psi = 0 gives exactly that average)."""
    if isinstance(psi, (int, float)) and psi == 1:
        return w
    w = ops.convert_to_tensor(w)
    num_layers = w.shape[1]
    cutoff = num_layers if cutoff is None else cutoff
    # int32: JAX has no int64 unless x64 is switched on, and layer indices are small.
    layer_idx = np.arange(num_layers, dtype=np.int32)[None, :, None]
    psi = ops.cast(psi, w.dtype)
    return ops.where(ops.less(layer_idx, ops.cast(cutoff, "int32")), dlatent_avg + (w - dlatent_avg) * psi, w)
