"""Discriminator (D_basic): FromRGB, per resolution (conv, blur, down-conv), 4x4 block with minibatch stddev.

Progressive growing mirrors G: at lod in [k, k+1) the features entering the next block are
`lerp(block_k(fromrgb(x_k)), fromrgb(downscale(x_k)), lod - k)`. With a static `level=k` D takes images at
R/2**k; with `level=None` it takes full-size images and honours any lod (the original's "linear" structure).
"""
import keras
import numpy as np
from keras import ops

from stylegan_tf.layers import (Bias, Blur, DownConv2D, EqualizedConv2D, EqualizedDense, FromRGB, MinibatchStddev,
                                activation_gain, apply_activation, downscale2d, lerp, lerp_clip)
from stylegan_tf.layers.blur import blur_filter_list
from stylegan_tf.layers.resample import resolve_fused
from stylegan_tf.layers.serialization import register
from stylegan_tf.networks.base import ImageNetwork
from stylegan_tf.networks.channels import nf as _nf
from stylegan_tf.networks.channels import resolution_log2
from stylegan_tf.networks.inference import batched, compiled, level_for_lod


def project_labels(scores, labels, label_size):
    """A conditional D's score: the output column of each sample's class (the original's label projection)."""
    if not label_size:
        return scores
    if labels is None:
        raise ValueError(f"this discriminator is conditional: pass labels of shape [N, {label_size}]")
    return ops.sum(scores * ops.cast(labels, scores.dtype), axis=1, keepdims=True)


def run_inputs(D, images, labels):
    """`D.run`'s numpy inputs, checked: images NHWC at D's full resolution, labels iff D is conditional."""
    images = np.asarray(images, dtype=np.float32)
    shape = (D.resolution, D.resolution, D.num_channels)
    if images.ndim != 4 or images.shape[1:] != shape:
        raise ValueError(f"images must have shape [N, {', '.join(map(str, shape))}] (NHWC), "
                         f"got {list(images.shape)}")
    if not D.label_size:
        return images, None
    if labels is None:
        raise ValueError(f"this discriminator is conditional: pass labels of shape [N, {D.label_size}]")
    return images, np.asarray(labels, dtype=np.float32)


@register
class DiscriminatorBlock(keras.layers.Layer):
    """Resolution r >= 8: Conv0 (3x3, nf(res-1)) -> Conv1_down (blur, 3x3 conv + 2x down, nf(res-2))."""

    def __init__(self, in_channels, mid_channels, out_channels, fused=False, blur_filter=(1, 2, 1),
                 nonlinearity="lrelu", use_wscale=True, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.mid_channels, self.out_channels = int(in_channels), int(mid_channels), int(out_channels)
        self.fused, self.nonlinearity, self.use_wscale = bool(fused), nonlinearity, bool(use_wscale)
        self.blur_filter = blur_filter_list(blur_filter)
        gain = activation_gain(nonlinearity)
        self.conv0 = EqualizedConv2D(self.mid_channels, self.in_channels, 3, gain=gain, use_wscale=self.use_wscale,
                                     name="Conv0")
        self.conv0_bias = Bias(self.mid_channels, name="Conv0_bias")
        self.blur = Blur(self.mid_channels, self.blur_filter, name="blur")
        self.conv1 = DownConv2D(self.out_channels, self.mid_channels, 3, fused=self.fused, gain=gain,
                                use_wscale=self.use_wscale, name="Conv1_down")
        self.conv1_bias = Bias(self.out_channels, name="Conv1_down_bias")
        self.built = True

    def call(self, x):
        x = apply_activation(self.conv0_bias(self.conv0(x)), self.nonlinearity)
        return apply_activation(self.conv1_bias(self.conv1(self.blur(x))), self.nonlinearity)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "mid_channels": self.mid_channels,
                "out_channels": self.out_channels, "fused": self.fused, "blur_filter": self.blur_filter,
                "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale}


@register
class DiscriminatorFinalBlock(keras.layers.Layer):
    """4x4: [minibatch stddev] -> Conv (3x3) -> Dense0 (NCHW-ordered flatten) -> Dense1 (gain 1)."""

    def __init__(self, in_channels, conv_channels, dense_channels, out_units, mbstd_group_size=4,
                 mbstd_num_features=1, nonlinearity="lrelu", use_wscale=True, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.conv_channels = int(in_channels), int(conv_channels)
        self.dense_channels, self.out_units = int(dense_channels), int(out_units)
        self.mbstd_group_size, self.mbstd_num_features = int(mbstd_group_size), int(mbstd_num_features)
        self.nonlinearity, self.use_wscale = nonlinearity, bool(use_wscale)
        gain = activation_gain(nonlinearity)
        use_mbstd = self.mbstd_group_size > 1
        self.mbstd = (MinibatchStddev(self.mbstd_group_size, self.mbstd_num_features, name="MinibatchStddev")
                      if use_mbstd else None)
        conv_in = self.in_channels + (self.mbstd_num_features if use_mbstd else 0)
        self.conv = EqualizedConv2D(self.conv_channels, conv_in, 3, gain=gain, use_wscale=self.use_wscale,
                                    name="Conv")
        self.conv_bias = Bias(self.conv_channels, name="Conv_bias")
        self.dense0 = EqualizedDense(self.dense_channels, self.conv_channels * 16, gain=gain,
                                     use_wscale=self.use_wscale, name="Dense0")
        self.dense0_bias = Bias(self.dense_channels, name="Dense0_bias")
        self.dense1 = EqualizedDense(self.out_units, self.dense_channels, gain=1.0, use_wscale=self.use_wscale,
                                     name="Dense1")
        self.dense1_bias = Bias(self.out_units, name="Dense1_bias")
        self.built = True

    def call(self, x):
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = apply_activation(self.conv_bias(self.conv(x)), self.nonlinearity)
        # The original flattens NCHW; transposing here keeps Dense0's weight rows in the original's order.
        x = ops.reshape(ops.transpose(x, [0, 3, 1, 2]), [-1, self.conv_channels * 16])
        x = apply_activation(self.dense0_bias(self.dense0(x)), self.nonlinearity)
        return self.dense1_bias(self.dense1(x))

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "conv_channels": self.conv_channels,
                "dense_channels": self.dense_channels, "out_units": self.out_units,
                "mbstd_group_size": self.mbstd_group_size, "mbstd_num_features": self.mbstd_num_features,
                "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale}


@register
class Discriminator(ImageNetwork):
    """D(images, labels=None, training=False, level=None) -> scores [N, 1]. Official D_basic arguments."""

    def __init__(self, resolution=32, num_channels=1, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                 nonlinearity="lrelu", use_wscale=True, mbstd_group_size=4, mbstd_num_features=1,
                 fused_scale="auto", blur_filter=(1, 2, 1), **kwargs):
        super().__init__(**kwargs)
        L = resolution_log2(resolution)
        resolve_fused(fused_scale, 4)
        self._args = dict(
            resolution=int(resolution), num_channels=int(num_channels), label_size=int(label_size),
            fmap_base=int(fmap_base), fmap_decay=float(fmap_decay), fmap_max=int(fmap_max),
            nonlinearity=nonlinearity, use_wscale=bool(use_wscale), mbstd_group_size=int(mbstd_group_size),
            mbstd_num_features=int(mbstd_num_features), fused_scale=fused_scale,
            blur_filter=blur_filter_list(blur_filter))
        a = self._args
        nf = lambda s: _nf(s, a["fmap_base"], a["fmap_decay"], a["fmap_max"])  # noqa: E731
        self.resolution_log2 = L
        # fromrgbs[k] is the original's FromRGB_lod{k} (input resolution R/2**k).
        self.fromrgbs = [FromRGB(nf(L - k - 1), a["num_channels"], nonlinearity, a["use_wscale"],
                                 name=f"FromRGB_lod{k}") for k in range(L - 1)]
        # blocks[k] is the block at resolution R/2**k (k < L-2).
        self.blocks = []
        for k in range(L - 2):
            res = L - k
            r = 2 ** res
            self.blocks.append(DiscriminatorBlock(nf(res - 1), nf(res - 1), nf(res - 2),
                                                  fused=resolve_fused(fused_scale, r), blur_filter=a["blur_filter"],
                                                  nonlinearity=nonlinearity, use_wscale=a["use_wscale"],
                                                  name=f"{r}x{r}"))
        self.final_block = DiscriminatorFinalBlock(nf(1), nf(1), nf(0), max(a["label_size"], 1),
                                                   a["mbstd_group_size"], a["mbstd_num_features"], nonlinearity,
                                                   a["use_wscale"], name="4x4")
        self.lod = self.add_weight(name="lod", shape=(), initializer="zeros", trainable=False)
        self._fns = {}
        self.built = True

    max_level = property(lambda self: self.resolution_log2 - 2)

    def frozen_variables(self, n):
        """The variables FreezeD (train.py --freeze-d N) keeps fixed: the `n` highest-resolution blocks and the
        FromRGB layers that feed them (the blocks above 4x4, highest first; 0 <= n <= len(blocks))."""
        if not 0 <= int(n) <= len(self.blocks):
            raise ValueError(f"--freeze-d {n}: D has {len(self.blocks)} blocks above 4x4: give 0 to {len(self.blocks)}")
        layers = self.blocks[:int(n)] + self.fromrgbs[:int(n)]
        return [v for layer in layers for v in layer.trainable_variables]

    def call(self, images, labels=None, training=False, level=None, lod=None, fade=True):
        lod = self.lod if lod is None else ops.cast(lod, "float32")
        x_img = ops.convert_to_tensor(images, "float32")
        L = self.resolution_log2
        if level is None:
            x = self.fromrgbs[0](x_img)
            for k in range(L - 2):
                x = self.blocks[k](x)
                x_img = downscale2d(x_img)
                x = lerp_clip(x, self.fromrgbs[k + 1](x_img), lod - float(k))
        else:
            level = int(level)
            if not 0 <= level <= self.max_level:
                raise ValueError(f"level must be in [0, {self.max_level}] for resolution {self.resolution}, "
                                 f"got {level}")
            x = self.fromrgbs[level](x_img)
            if level < L - 2:
                x = self.blocks[level](x)
                if fade:
                    low = self.fromrgbs[level + 1](downscale2d(x_img))
                    x = lerp(x, low, ops.clip(lod - float(level), 0.0, 1.0))
                for k in range(level + 1, L - 2):
                    x = self.blocks[k](x)
        return project_labels(self.final_block(x), labels, self.label_size)

    def run(self, images, labels=None, lod=None, batch_size=32):
        """images NHWC float32 at full resolution ([-1, 1] range) -> scores [N, 1] numpy."""
        images, labels = run_inputs(self, images, labels)
        lod = float(ops.convert_to_numpy(self.lod)) if lod is None else float(lod)
        level, fade = level_for_lod(lod, self.max_level)
        key = ("run", level, fade, labels is not None)
        fn = self._fns.get(key)
        if fn is None:
            def f(x, labels, lod_t):
                return self.call(downscale2d(x, 2 ** level), labels, level=level, lod=lod_t, fade=fade)
            fn = self._fns[key] = compiled(f, self.variables)
        lod_t = ops.convert_to_tensor(lod, "float32")
        # Minibatch stddev sees each batch as the original does, so every batch must split into whole groups.
        group = self._args["mbstd_group_size"]
        if group > 1:
            n, b = len(images), max(int(batch_size), 1)
            for size in {min(b, n), n % b} - {0}:
                if size % min(group, size):
                    raise ValueError(f"D.run: a batch of {size} images does not split into minibatch-stddev "
                                     f"groups of {min(group, size)}; use a number of images and batch_size "
                                     f"that are multiples of {group}")
        out = batched(lambda xb, lb: fn(xb, lb, lod_t), [images, labels], batch_size)
        return np.zeros([0, 1], np.float32) if out is None else out
