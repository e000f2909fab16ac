"""The learned 4x4 constant input of the synthesis network (init ones), tiled over the batch."""
import keras
import tensorflow as tf

_PKG = "stylegan_tf"


@keras.saving.register_keras_serializable(package=_PKG)
class ConstInput(keras.layers.Layer):
    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.size = int(channels), int(size)
        self.const = self.add_weight(name="const", shape=(1, self.size, self.size, self.channels),
                                     initializer="ones")
        self.built = True

    def call(self, batch_size):
        return tf.tile(self.const, tf.stack([batch_size, 1, 1, 1]))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "size": self.size}
