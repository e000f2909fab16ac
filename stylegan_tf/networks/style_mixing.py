"""Style-mixing regularisation (training only): with probability p, layers >= one random cutoff per minibatch
take their w from a second latent. The cutoff is uniform in [1, cur_layers), cur_layers = num_layers -
2*floor(lod); without mixing the cutoff is cur_layers (all active layers keep the first w).
`seed`: see `draws`."""
import numpy as np
from keras import ops

from stylegan_tf.networks.draws import uniform


def mixing_cutoff(num_layers, lod, prob, seed=None):
    cur_layers = num_layers - 2 * ops.cast(ops.floor(ops.maximum(lod, 0.0)), "int32")
    cur_layers = ops.maximum(cur_layers, 2)
    mixed = uniform([], seed, 0, minval=1, maxval=cur_layers, dtype="int32")
    return ops.where(uniform([], seed, 1, minval=0.0, maxval=1.0) < prob, mixed, cur_layers)


def mix_styles(w1, w2, cutoff):
    layer_idx = np.arange(w1.shape[1], dtype=np.int32)[None, :, None]
    return ops.where(ops.less(layer_idx, cutoff), w1, w2)
