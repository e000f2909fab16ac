"""Style-mixing regularisation (training only): with probability p, layers >= one random cutoff per minibatch
take their w from a second latent. The cutoff is uniform in [1, cur_layers), cur_layers = num_layers -
2*floor(lod); without mixing the cutoff is cur_layers (all active layers keep the first w).
A per-level mapping (v1..v4, networks/mapping_variants.py) passes its level `boundaries`: the cutoff is then
uniform over the boundaries below cur_layers, so a level's rows always come from one latent.
`seed`: see `draws`."""
import numpy as np
from keras import ops

from stylegan_tf.networks.draws import uniform


def mixing_cutoff(num_layers, lod, prob, seed=None, boundaries=None):
    """The first row that takes the second latent's styles (a [] int32 tensor).

    Args:
        num_layers: style rows of the synthesis.
        lod: the current level of detail (rows above the active resolution are never counted).
        prob: the style-mixing probability.
        seed: see `draws` (salt 0 the cutoff, 1 the mix-or-not draw).
        boundaries: None (official: any row in [1, cur_layers)) or the allowed cut rows (level boundaries).

    Example:
        >>> int(mixing_cutoff(8, 0.0, 1.0, boundaries=[2, 4, 6])) in (2, 4, 6)
        True
    """
    cur_layers = num_layers - 2 * ops.cast(ops.floor(ops.maximum(lod, 0.0)), "int32")
    cur_layers = ops.maximum(cur_layers, 2)
    if boundaries is None:
        mixed = uniform([], seed, 0, minval=1, maxval=cur_layers, dtype="int32")
    elif len(boundaries) == 0:
        return cur_layers
    else:
        bounds = np.asarray(boundaries, np.int32)
        valid = ops.sum(ops.cast(ops.less(bounds, cur_layers), "int32"))
        pick = uniform([], seed, 0, minval=0, maxval=ops.maximum(valid, 1), dtype="int32")
        mixed = ops.where(valid > 0, ops.take(bounds, pick), cur_layers)
    return ops.where(uniform([], seed, 1, minval=0.0, maxval=1.0) < prob, mixed, cur_layers)


def mix_styles(w1, w2, cutoff):
    layer_idx = np.arange(w1.shape[1], dtype=np.int32)[None, :, None]
    return ops.where(ops.less(layer_idx, cutoff), w1, w2)
