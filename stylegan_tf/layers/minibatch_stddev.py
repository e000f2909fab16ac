"""Minibatch standard deviation (D's 4x4 block): one stddev scalar per group appended as the last channel(s).

Groups are strided, as in the original: with M = N / G groups, sample i belongs to group i mod M. The batch
must be divisible by min(group_size, N).
"""
import keras
import tensorflow as tf

_PKG = "stylegan_tf"


def minibatch_stddev(x, group_size=4, num_new_features=1):
    n = tf.shape(x)[0]
    g = tf.minimum(group_size, n)
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    f = int(num_new_features)
    y = tf.reshape(x, tf.stack([g, -1, h, w, f, c // f]))        # [G, M, H, W, n, c]
    y = y - tf.reduce_mean(y, axis=0, keepdims=True)
    y = tf.reduce_mean(tf.square(y), axis=0)                   # biased variance over the group
    y = tf.sqrt(y + 1e-8)
    y = tf.reduce_mean(y, axis=[1, 2, 4])                       # [M, n]
    y = tf.tile(y[:, None, None, :], tf.stack([g, h, w, 1]))    # [N, H, W, n]; sample i gets group i mod M
    return tf.concat([x, y], axis=-1)


@keras.saving.register_keras_serializable(package=_PKG)
class MinibatchStddev(keras.layers.Layer):
    def __init__(self, group_size=4, num_new_features=1, **kwargs):
        super().__init__(**kwargs)
        self.group_size, self.num_new_features = int(group_size), int(num_new_features)
        self.built = True

    def call(self, x):
        return minibatch_stddev(x, self.group_size, self.num_new_features)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size,
                "num_new_features": self.num_new_features}
