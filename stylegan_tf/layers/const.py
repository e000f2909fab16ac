"""The learned 4x4 constant input of the synthesis network (init ones), tiled over the batch."""
import keras
from keras import ops

from stylegan_tf.layers.serialization import register


@register
class ConstInput(keras.layers.Layer):
    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.size = int(channels), int(size)
        self.const = self.add_weight(name="const", shape=(1, self.size, self.size, self.channels),
                                     initializer="ones")
        self.built = True

    def call(self, like):
        # Keras only takes tensors as positional inputs, so the batch size comes as the first axis of `like`
        # (the dlatents), not as a number.
        return ops.tile(self.const, [ops.shape(like)[0], 1, 1, 1])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "size": self.size}
