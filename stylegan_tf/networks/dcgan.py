"""DCGAN (Radford et al. 2015, "Unsupervised Representation Learning with Deep Convolutional GANs") as an
architecture of the pipeline, written with Keras layers and keras.ops (TensorFlow and JAX).

G: z (+ one-hot labels, concatenated) -> bias-free dense to 4x4 x nf(4), BatchNorm, ReLU, then per doubling a
stride-2 4x4 `Conv2DTranspose` + BatchNorm + ReLU, and a last stride-2 `Conv2DTranspose` to the image with tanh.
D: image (+ labels as constant extra input channels) -> stride-2 4x4 convs with LeakyReLU 0.2, BatchNorm on all
but the first, down to 4x4, then a bias-free dense to one logit (the PyTorch tutorial's 4x4 "valid" conv).
Weights ~ N(0, 0.02), BatchNorm gamma ~ N(1, 0.02) as the paper says. Widths: the layer at resolution r has
min(width * R / (2 r), fmap_max) maps (R the output resolution), so width 64 at 64x64 is the tutorial network
(G 512-256-128-64, D 64-128-256-512) with 3,576,704 and 2,765,568 trainable parameters.
"""
import math

import keras
import numpy as np
from keras import layers, ops

from stylegan_tf.layers.serialization import register
from stylegan_tf.networks.archs import register_arch
from stylegan_tf.networks.base import ImageNetwork
from stylegan_tf.networks.inference import batched, check_latents, compiled

# PyTorch's BatchNorm momentum 0.1 is Keras' 0.9 (Keras keeps `momentum` of the old value).
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5


def _conv_init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _batch_norm(name):
    return layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=name,
                                     gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def dcgan_widths(resolution, width, fmap_max):
    """{r: maps} of the hidden layers at r = 4 .. resolution/2 (G) = resolution/2 .. 4 (D)."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"DCGAN resolution must be a power of two >= 8, got {resolution}")
    return {2 ** k: int(min(width * resolution // 2 ** (k + 1), fmap_max))
            for k in range(2, int(math.log2(resolution)))}


class _Net(ImageNetwork):
    arch_name = "dcgan"


@register
class DCGANGenerator(_Net):
    """G(z, labels=None, training=False) -> images NHWC in [-1, 1].

    Args:
        resolution: output resolution (power of two, 8 .. 1024; 32-256 is what DCGAN is used at).
        num_channels: image channels.
        label_size: one-hot label width (0: unconditional); labels are concatenated to z.
        latent_size: size of z (the paper's and the tutorial's 100).
        width: maps of the last hidden layer (the tutorial's ngf); doubles per halving of resolution.
        fmap_max: cap on any layer's maps.
        use_bias: biases in the (transposed) convolutions (the tutorial has none: BatchNorm follows).

    Example:
        >>> G = DCGANGenerator(resolution=64, num_channels=3, latent_size=100, width=64)
        >>> G(np.zeros([2, 100], np.float32)).shape
        TensorShape([2, 64, 64, 3])
    """

    def __init__(self, resolution=64, num_channels=3, label_size=0, latent_size=100, width=64, fmap_max=512,
                 use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self._args = dict(resolution=int(resolution), num_channels=int(num_channels), label_size=int(label_size),
                          latent_size=int(latent_size), width=int(width), fmap_max=int(fmap_max),
                          use_bias=bool(use_bias))
        widths = dcgan_widths(self.resolution, width, fmap_max)
        self._nf4 = widths[4]
        self.dense = layers.Dense(4 * 4 * widths[4], use_bias=False, kernel_initializer=_conv_init(), name="dense")
        self.norms = [_batch_norm("bn4")]
        self.convs = []
        for r in sorted(widths)[1:]:
            self.convs.append(layers.Conv2DTranspose(widths[r], 4, strides=2, padding="same", use_bias=use_bias,
                                                     kernel_initializer=_conv_init(), name=f"up{r}"))
            self.norms.append(_batch_norm(f"bn{r}"))
        self.to_rgb = layers.Conv2DTranspose(num_channels, 4, strides=2, padding="same", use_bias=use_bias,
                                             kernel_initializer=_conv_init(), name=f"up{self.resolution}")
        self._fns = {}
        self.build((None, self.latent_size + self.label_size))

    latent_size = property(lambda self: self._args["latent_size"])
    # generate.py's z-space figures (interpolate, z-walk) map z to "w" and synthesize from it. DCGAN has no
    # mapping network: its "w" is the dense layer's input, z with the labels appended, as one style.
    dlatent_size = property(lambda self: self._args["latent_size"] + self._args["label_size"])
    num_styles = 1
    num_layers = 1

    @property
    def dlatent_avg(self):
        """The centre of DCGAN's "w" (z ~ N(0, I) with labels appended): what truncation pulls towards."""
        return np.zeros([self.dlatent_size], np.float32)

    def noise_buffers(self):
        return []

    def build(self, input_shape):
        x = keras.KerasTensor((1, self.latent_size + self.label_size))
        self.dense.build(x.shape)
        shape = (1, 4, 4, self._nf4)
        self.norms[0].build(shape)
        for conv, norm in zip(self.convs, self.norms[1:]):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
        self.to_rgb.build(shape)
        self.built = True

    def call(self, z, labels=None, training=False, level=None, noise_mode=None, seed=None, **_):
        """`level`, `noise_mode` and `seed` are accepted for the pipeline's interface and unused: DCGAN has
        one structure and no noise inputs."""
        x = ops.cast(z, self.compute_dtype)
        if self.label_size:
            x = ops.concatenate([x, ops.cast(labels, x.dtype)], axis=1)
        return self._synthesis(x, training)

    def _synthesis(self, x, training):
        x = ops.reshape(self.dense(x), (-1, 4, 4, self._nf4))
        x = ops.relu(self.norms[0](x, training=training))
        for conv, norm in zip(self.convs, self.norms[1:]):
            x = ops.relu(norm(conv(x), training=training))
        return ops.tanh(self.to_rgb(x))

    def _compiled(self, key, fn):
        if key not in self._fns:
            self._fns[key] = compiled(fn, self.variables)
        return self._fns[key]

    def map_latents(self, z, labels=None, batch_size=256):
        """z [N, latent_size] (+ labels) -> "w" [N, 1, latent_size + label_size]: z with the labels appended."""
        z, labels = self._check_z(z, labels)
        w = z if labels is None else np.concatenate([z, labels], axis=1)
        return w[:, None, :]

    def synthesize(self, w, noise_mode="const", lod=None, batch_size=32):
        """"w" [N, 1, latent_size + label_size] (see `map_latents`) -> images NHWC float32 (numpy)."""
        w = np.asarray(w, np.float32)
        if w.ndim != 3 or w.shape[1:] != (1, self.dlatent_size):
            raise ValueError(f"w must have shape [N, 1, {self.dlatent_size}], got {list(w.shape)}")
        fn = self._compiled("synth", lambda wb: self._synthesis(ops.cast(wb, self.compute_dtype), False))
        out = batched(fn, [w[:, 0]], batch_size)
        return self._empty() if out is None else out

    def _empty(self):
        return np.zeros([0, self.resolution, self.resolution, self.num_channels], np.float32)

    def _check_z(self, z, labels):
        return check_latents(self, z, labels)

    def run(self, z, labels=None, truncation_psi=None, truncation_cutoff=None, noise_mode=None, lod=None,
            batch_size=32, noise_seed=None):
        """z [N, latent_size] (+ labels [N, label_size]) -> images NHWC float32 in [-1, 1] (numpy), BatchNorm in
        inference mode. Truncation, noise (and its seed) and lod have no meaning here and are ignored (generate.py's
        common figures and the metrics pass them)."""
        z, labels = self._check_z(z, labels)
        fn = self._compiled(("run", labels is not None), lambda zb, lb: self(zb, lb, training=False))
        out = batched(fn, [z, labels], batch_size)
        return self._empty() if out is None else out


@register
class DCGANDiscriminator(_Net):
    """D(images, labels=None, training=False) -> logits [N, 1].

    Args:
        resolution: input resolution (power of two >= 8).
        num_channels: image channels.
        label_size: one-hot label width; labels enter as label_size constant extra input channels.
        width: maps of the first layer (the tutorial's ndf); doubles per halving of resolution.
        fmap_max: cap on any layer's maps.
        use_bias: biases in the convolutions (the tutorial has none).

    Example:
        >>> D = DCGANDiscriminator(resolution=64, num_channels=3, width=64)
        >>> D(np.zeros([2, 64, 64, 3], np.float32)).shape
        TensorShape([2, 1])
    """

    def __init__(self, resolution=64, num_channels=3, label_size=0, width=64, fmap_max=512, use_bias=False,
                 **kwargs):
        super().__init__(**kwargs)
        self._args = dict(resolution=int(resolution), num_channels=int(num_channels), label_size=int(label_size),
                          width=int(width), fmap_max=int(fmap_max), use_bias=bool(use_bias))
        widths = dcgan_widths(self.resolution, width, fmap_max)
        self.convs, self.norms = [], []
        for r in sorted(widths, reverse=True):
            self.convs.append(layers.Conv2D(widths[r], 4, strides=2, padding="same", use_bias=use_bias,
                                            kernel_initializer=_conv_init(), name=f"down{r}"))
            # The paper: no BatchNorm on the discriminator's input layer.
            self.norms.append(None if r == self.resolution // 2 else _batch_norm(f"bn{r}"))
        self.out = layers.Dense(1, use_bias=False, kernel_initializer=_conv_init(), name="logit")
        self.build((None, self.resolution, self.resolution, self.num_channels))

    def build(self, input_shape):
        shape = (1, self.resolution, self.resolution, self.num_channels + self.label_size)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)
        self.out.build((1, int(np.prod(shape[1:]))))
        self.built = True

    def call(self, images, labels=None, training=False, level=None, **_):
        x = ops.cast(images, self.compute_dtype)
        if self.label_size:
            lab = ops.cast(labels, x.dtype)[:, None, None, :]
            x = ops.concatenate([x, ops.broadcast_to(lab, ops.shape(x)[:3] + (self.label_size,))], axis=-1)
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x)
            if norm is not None:
                x = norm(x, training=training)
            x = ops.leaky_relu(x, 0.2)
        return self.out(ops.reshape(x, (ops.shape(x)[0], -1)))

    def run(self, images, labels=None, batch_size=32, **_):
        """images NHWC (numpy) -> logits [N, 1] (numpy)."""
        fn = compiled(lambda xb, lb: self(xb, lb, training=False), self.variables)
        images = np.asarray(images, np.float32)
        return batched(fn, [images, None if not self.label_size else np.asarray(labels, np.float32)], batch_size)


def build_dcgan(opts, resolution, num_channels, label_size):
    """DCGAN's G and D for training options `opts` (latent_size, width, fmap_max)."""
    width = opts.width if getattr(opts, "width", None) else 64
    G = DCGANGenerator(resolution=resolution, num_channels=num_channels, label_size=label_size,
                       latent_size=opts.latent_size, width=width, fmap_max=opts.fmap_max)
    D = DCGANDiscriminator(resolution=resolution, num_channels=num_channels, label_size=label_size, width=width,
                           fmap_max=opts.fmap_max)
    return G, D


# The paper's training setup: Adam lr 2e-4, beta1 0.5 (beta2 as Adam's 0.999), minibatch 128, the plain
# non-saturating GAN loss (logistic without R1: gamma 0), no running average of G (Gs is a copy), latent 100,
# 64 base maps, all at full resolution from the start.
DCGAN_DEFAULTS = dict(lrate=2e-4, adam_beta1=0.5, adam_beta2=0.999, adam_epsilon=1e-8, minibatch=128,
                      loss="logistic", gamma=0.0, g_smoothing_kimg=0.0, latent_size=100, width=64, fmap_max=512,
                      minibatch_repeats=1)
# The demo (train.py without --data): the 64x64 demo faces at 32x32 in a few CPU minutes.
DCGAN_DEMO = dict(resolution=32, total_kimg=32.0, minibatch=64, tick_kimg=4.0, snap_ticks=4, mirror=True,
                  width=32)

register_arch("dcgan", build=build_dcgan, data="single", defaults=DCGAN_DEFAULTS, demo=DCGAN_DEMO,
              progressive=False, gs="copy", styles=False, sizing="width", min_resolution=8,
              description="DCGAN (Radford et al. 2015): transposed convs + BatchNorm, Adam 2e-4/0.5, no growing")
