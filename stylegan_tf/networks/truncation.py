"""Truncation trick: w' = avg + psi * (w - avg) on layers < cutoff (None = all layers); inference only."""
import numpy as np
import tensorflow as tf


def truncate(w, dlatent_avg, psi, cutoff=None):
    """w [N, num_layers, D]. Layers at or above `cutoff` are returned untouched (exactly w), and so is every
    layer when `psi` is the Python number 1 (avg + (w - avg) * 1 can differ from w in the last bit)."""
    if isinstance(psi, (int, float)) and psi == 1:
        return w
    num_layers = w.shape[1]
    cutoff = num_layers if cutoff is None else cutoff
    layer_idx = np.arange(num_layers)[None, :, None]
    mask = tf.broadcast_to(tf.convert_to_tensor(layer_idx) < tf.cast(cutoff, tf.int64), tf.shape(w))
    psi = tf.cast(psi, w.dtype)
    return tf.where(mask, dlatent_avg + (w - dlatent_avg) * psi, w)
