"""Networks(G, D, Gs): the three networks of a StyleGAN run in one Keras model that saves as `.keras`."""
import keras

from stylegan_tf.layers.serialization import register


@register
class Networks(keras.Model):
    def __init__(self, G, D=None, Gs=None, **kwargs):
        super().__init__(**kwargs)
        self.G = G
        self.D = D
        self.Gs = G if Gs is None else Gs
        self.built = True

    def call(self, z, labels=None, training=False):
        return self.Gs(z, labels, training=training)

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {**super().get_config(), "G": ser(self.G), "D": None if self.D is None else ser(self.D),
                "Gs": ser(self.Gs)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        des = keras.saving.deserialize_keras_object
        G = des(config.pop("G"))
        D = config.pop("D")
        D = None if D is None else des(D)
        Gs = des(config.pop("Gs"))
        return cls(G, D, Gs, **config)
