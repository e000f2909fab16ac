"""Mapping network: z (+ embedded labels) -> PixelNorm -> `mapping_layers` dense layers -> w, broadcast."""
import keras
from keras import ops

from stylegan_tf.layers import Bias, EqualizedDense, LabelConcat, activation_gain, apply_activation, pixel_norm
from stylegan_tf.layers.serialization import register


@register
class MappingNetwork(keras.layers.Layer):
    def __init__(self, latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
                 mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu",
                 use_wscale=True, normalize_latents=True, **kwargs):
        super().__init__(**kwargs)
        self.latent_size, self.label_size, self.dlatent_size = int(latent_size), int(label_size), int(dlatent_size)
        self.dlatent_broadcast = None if dlatent_broadcast is None else int(dlatent_broadcast)
        self.mapping_layers, self.mapping_fmaps = int(mapping_layers), int(mapping_fmaps)
        self.mapping_lrmul, self.mapping_nonlinearity = float(mapping_lrmul), mapping_nonlinearity
        self.use_wscale, self.normalize_latents = bool(use_wscale), bool(normalize_latents)
        gain = activation_gain(mapping_nonlinearity)
        self.label_concat = (LabelConcat(self.label_size, self.latent_size, name="LabelConcat")
                             if self.label_size else None)
        width = self.latent_size * (2 if self.label_size else 1)
        if self.mapping_layers == 0 and width != self.dlatent_size:
            raise ValueError(f"mapping_layers=0 needs dlatent_size == {width} (z width), got {self.dlatent_size}")
        self.dense_layers, self.biases = [], []
        for i in range(self.mapping_layers):
            fmaps = self.dlatent_size if i == self.mapping_layers - 1 else self.mapping_fmaps
            self.dense_layers.append(EqualizedDense(fmaps, width, gain=gain, lrmul=self.mapping_lrmul,
                                                    use_wscale=self.use_wscale, name=f"Dense{i}"))
            self.biases.append(Bias(fmaps, lrmul=self.mapping_lrmul, name=f"Dense{i}_bias"))
            width = fmaps
        self.built = True

    def call(self, z, labels=None):
        x = ops.convert_to_tensor(z, "float32")
        if self.label_concat is not None:
            if labels is None:
                raise ValueError(f"this network is conditional: pass labels of shape [N, {self.label_size}]")
            x = self.label_concat(x, ops.convert_to_tensor(labels, "float32"))
        if self.normalize_latents:
            x = pixel_norm(x)
        for dense, bias in zip(self.dense_layers, self.biases):
            x = apply_activation(bias(dense(x)), self.mapping_nonlinearity)
        if self.dlatent_broadcast is not None:
            x = ops.tile(x[:, None, :], [1, self.dlatent_broadcast, 1])
        return x

    def get_config(self):
        return {**super().get_config(), "latent_size": self.latent_size, "label_size": self.label_size,
                "dlatent_size": self.dlatent_size, "dlatent_broadcast": self.dlatent_broadcast,
                "mapping_layers": self.mapping_layers, "mapping_fmaps": self.mapping_fmaps,
                "mapping_lrmul": self.mapping_lrmul, "mapping_nonlinearity": self.mapping_nonlinearity,
                "use_wscale": self.use_wscale, "normalize_latents": self.normalize_latents}
