"""Low-pass blur applied after the up-conv in G and before the down-conv in D (normalised [1,2,1] kernel)."""
import keras
import numpy as np
from keras import ops

from stylegan_tf.layers.serialization import register


def blur_filter_list(blur_filter):
    """The `blur_filter` argument as a JSON-friendly list of floats, or None (no blur) for None or empty."""
    if blur_filter is None or not len(blur_filter):
        return None
    return np.asarray(blur_filter, dtype=np.float64).tolist()


def blur_kernel(f, channels):
    f = np.asarray(f, dtype=np.float32)
    if f.ndim == 1:
        f = f[:, None] * f[None, :]
    f = f / np.sum(f)
    return np.tile(f[:, :, None, None], [1, 1, int(channels), 1])


@register
class Blur(keras.layers.Layer):
    """Depthwise conv with a fixed filter, zero SAME padding. The kernel is symmetric, so no flip question."""

    def __init__(self, channels, blur_filter=(1, 2, 1), **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.blur_filter = blur_filter_list(blur_filter)
        self._kernel = None if self.blur_filter is None else blur_kernel(self.blur_filter, self.channels)
        self.built = True

    def call(self, x):
        if self._kernel is None:
            return x
        return ops.depthwise_conv(x, ops.cast(self._kernel, x.dtype), strides=1, padding="same")

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "blur_filter": self.blur_filter}
