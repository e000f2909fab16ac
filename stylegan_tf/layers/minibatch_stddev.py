"""Minibatch standard deviation (D's 4x4 block): one stddev scalar per group appended as the last channel(s).

Groups are strided, as in the original: with M = N / G groups, sample i belongs to group i mod M. The batch
must be divisible by min(group_size, N).
"""
import keras
from keras import ops

from stylegan_tf.layers.serialization import register


def minibatch_stddev(x, group_size=4, num_new_features=1):
    n = ops.shape(x)[0]
    # The batch is a tensor under TensorFlow graphs with a dynamic batch, a Python int otherwise.
    g = min(group_size, n) if isinstance(n, int) else ops.minimum(group_size, n)
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    f = int(num_new_features)
    y = ops.reshape(x, [g, -1, h, w, f, c // f])               # [G, M, H, W, n, c]
    y = y - ops.mean(y, axis=0, keepdims=True)
    y = ops.mean(ops.square(y), axis=0)                        # biased variance over the group
    y = ops.sqrt(y + 1e-8)
    y = ops.mean(y, axis=[1, 2, 4])                            # [M, n]
    y = ops.tile(y[:, None, None, :], [g, h, w, 1])            # [N, H, W, n]; sample i gets group i mod M
    return ops.concatenate([x, y], axis=-1)


@register
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
