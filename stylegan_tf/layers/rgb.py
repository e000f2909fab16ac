"""ToRGB (1x1 conv, gain 1, bias, linear) and FromRGB (1x1 conv, He gain, bias, activation)."""
import keras

from stylegan_tf.layers.activation import activation_gain, apply_activation
from stylegan_tf.layers.equalized import Bias, EqualizedConv2D
from stylegan_tf.layers.serialization import register


@register
class ToRGB(keras.layers.Layer):
    def __init__(self, num_channels, in_channels, use_wscale=True, **kwargs):
        super().__init__(**kwargs)
        self.num_channels, self.in_channels, self.use_wscale = int(num_channels), int(in_channels), bool(use_wscale)
        self.conv = EqualizedConv2D(self.num_channels, self.in_channels, kernel=1, gain=1.0,
                                    use_wscale=self.use_wscale, name="conv")
        self.bias = Bias(self.num_channels, name="bias")
        self.built = True

    def call(self, x):
        return self.bias(self.conv(x))

    def get_config(self):
        return {**super().get_config(), "num_channels": self.num_channels, "in_channels": self.in_channels,
                "use_wscale": self.use_wscale}


@register
class FromRGB(keras.layers.Layer):
    def __init__(self, filters, num_channels, nonlinearity="lrelu", use_wscale=True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.num_channels = int(filters), int(num_channels)
        self.nonlinearity, self.use_wscale = nonlinearity, bool(use_wscale)
        self.conv = EqualizedConv2D(self.filters, self.num_channels, kernel=1,
                                    gain=activation_gain(nonlinearity), use_wscale=self.use_wscale, name="conv")
        self.bias = Bias(self.filters, name="bias")
        self.built = True

    def call(self, x):
        return apply_activation(self.bias(self.conv(x)), self.nonlinearity)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "num_channels": self.num_channels,
                "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale}
