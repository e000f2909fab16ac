"""Label embedding of the mapping network: labels @ W (N(0,1) init, no equalization), concatenated to z."""
import keras
from keras import ops

from stylegan_tf.layers.serialization import register


@register
class LabelConcat(keras.layers.Layer):
    def __init__(self, label_size, latent_size, **kwargs):
        super().__init__(**kwargs)
        self.label_size, self.latent_size = int(label_size), int(latent_size)
        self.weight = self.add_weight(name="weight", shape=(self.label_size, self.latent_size),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.built = True

    def call(self, z, labels):
        return ops.concatenate([z, ops.matmul(labels, self.weight)], axis=1)

    def get_config(self):
        return {**super().get_config(), "label_size": self.label_size, "latent_size": self.latent_size}
