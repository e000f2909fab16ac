"""Style-mixing regularisation (training only): with probability p, layers >= one random cutoff per minibatch
take their w from a second latent. The cutoff is uniform in [1, cur_layers), cur_layers = num_layers -
2*floor(lod); without mixing the cutoff is cur_layers (all active layers keep the first w).
`seed`: see `draws`."""
import numpy as np
import tensorflow as tf

from stylegan_tf.networks.draws import uniform


def mixing_cutoff(num_layers, lod, prob, seed=None):
    cur_layers = num_layers - 2 * tf.cast(tf.math.floor(tf.maximum(lod, 0.0)), tf.int32)
    cur_layers = tf.maximum(cur_layers, 2)
    mixed = uniform([], seed, 0, minval=1, maxval=cur_layers, dtype=tf.int32)
    return tf.where(uniform([], seed, 1, minval=0.0, maxval=1.0) < prob, mixed, cur_layers)


def mix_styles(w1, w2, cutoff):
    layer_idx = np.arange(w1.shape[1])[None, :, None]
    mask = tf.broadcast_to(tf.convert_to_tensor(layer_idx, tf.int32) < cutoff, tf.shape(w1))
    return tf.where(mask, w1, w2)
