"""The base of every generator and discriminator: its constructor arguments are its Keras config."""
import keras


class ImageNetwork(keras.Model):
    """A network whose `__init__` stores its (normalised) arguments in `self._args`: `get_config` saves them,
    `from_config` rebuilds from them, and the fields every network has are read from them."""

    resolution = property(lambda self: self._args["resolution"])
    num_channels = property(lambda self: self._args["num_channels"])
    label_size = property(lambda self: self._args["label_size"])

    def get_config(self):
        return {**super().get_config(), **self._args}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
