"""Synthesis network: 4x4 constant -> per resolution (up-conv, blur, epilogue, conv, epilogue) -> ToRGB.

Progressive growing follows the original's semantics. `lod` 0 is full resolution; for lod in [k, k+1) the
image is `lerp(torgb(level k), upscale(torgb(level k+1)), lod - k)`, i.e. the fade weight is that of the
lower-resolution path. With a static `level=k` only the blocks up to resolution R/2**k are computed and the
image is returned at that native size; with `level=None` every block runs and the output is full size
(the original's "linear" structure, correct for any lod value, even a traced one).
"""
import keras
from keras import ops

from stylegan_tf.layers import (Blur, ConstInput, EqualizedConv2D, EqualizedDense, LayerEpilogue, ToRGB, UpConv2D,
                                activation_gain, lerp, lerp_clip, upscale2d)
from stylegan_tf.layers.blur import blur_filter_list
from stylegan_tf.layers.noise import check_noise_mode
from stylegan_tf.layers.resample import resolve_fused
from stylegan_tf.layers.serialization import register
from stylegan_tf.networks import draws
from stylegan_tf.networks.channels import nf as _nf
from stylegan_tf.networks.channels import resolution_log2


@register
class SynthesisNetwork(keras.layers.Layer):
    def __init__(self, dlatent_size=512, num_channels=3, resolution=1024, fmap_base=8192, fmap_decay=1.0,
                 fmap_max=512, use_styles=True, const_input_layer=True, use_noise=True, nonlinearity="lrelu",
                 use_wscale=True, use_pixel_norm=False, use_instance_norm=True, fused_scale="auto",
                 blur_filter=(1, 2, 1), **kwargs):
        super().__init__(**kwargs)
        self.resolution_log2 = resolution_log2(resolution)
        self.dlatent_size, self.num_channels, self.resolution = int(dlatent_size), int(num_channels), int(resolution)
        self.fmap_base, self.fmap_decay, self.fmap_max = int(fmap_base), float(fmap_decay), int(fmap_max)
        self.use_styles, self.const_input_layer = bool(use_styles), bool(const_input_layer)
        self.use_noise = bool(use_noise)
        self.nonlinearity, self.use_wscale = nonlinearity, bool(use_wscale)
        self.use_pixel_norm, self.use_instance_norm = bool(use_pixel_norm), bool(use_instance_norm)
        resolve_fused(fused_scale, 4)
        self.fused_scale = fused_scale
        self.blur_filter = blur_filter_list(blur_filter)
        self.num_layers = self.resolution_log2 * 2 - 2
        self.num_styles = self.num_layers if self.use_styles else 1
        gain = activation_gain(nonlinearity)
        nf = self.nf
        L = self.resolution_log2

        # Stored noise maps, one per layer, [1, H, W, 1] (the original's noise{i}, NCHW there).
        self.noise_buffers = []
        if self.use_noise:
            for i in range(self.num_layers):
                r = 2 ** (i // 2 + 2)
                self.noise_buffers.append(self.add_weight(
                    name=f"noise{i}", shape=(1, r, r, 1), trainable=False,
                    initializer=keras.initializers.RandomNormal(0.0, 1.0)))

        def epilogue(i, ch, scope):
            return LayerEpilogue(ch, self.dlatent_size, use_noise=self.use_noise, use_pixel_norm=self.use_pixel_norm,
                                 use_instance_norm=self.use_instance_norm, use_styles=self.use_styles,
                                 nonlinearity=nonlinearity, use_wscale=self.use_wscale, name=f"{scope}_epilogue")

        if self.const_input_layer:
            self.input_layer = ConstInput(nf(1), name="4x4_Const")
        else:
            # The original's ProGAN-style input: dense from w[:, 0] with gain/4, reshaped as NCHW.
            self.input_layer = EqualizedDense(nf(1) * 16, self.dlatent_size, gain=gain / 4,
                                              use_wscale=self.use_wscale, name="4x4_Dense")
        # convs[i - 1] feeds layer i (i >= 1), blurs[res - 3] follows the up-conv; epilogues[i] ends layer i.
        self.epilogues = [epilogue(0, nf(1), "4x4_Const" if self.const_input_layer else "4x4_Dense")]
        self.convs = [EqualizedConv2D(nf(1), nf(1), 3, gain=gain, use_wscale=self.use_wscale, name="4x4_Conv")]
        self.epilogues.append(epilogue(1, nf(1), "4x4_Conv"))
        self.blurs = []
        for res in range(3, L + 1):
            r = 2 ** res
            self.convs.append(UpConv2D(nf(res - 1), nf(res - 2), 3, gain=gain, use_wscale=self.use_wscale,
                                       fused=resolve_fused(fused_scale, r), name=f"{r}x{r}_Conv0_up"))
            self.blurs.append(Blur(nf(res - 1), self.blur_filter, name=f"{r}x{r}_Conv0_up_blur"))
            self.epilogues.append(epilogue(2 * res - 4, nf(res - 1), f"{r}x{r}_Conv0_up"))
            self.convs.append(EqualizedConv2D(nf(res - 1), nf(res - 1), 3, gain=gain, use_wscale=self.use_wscale,
                                              name=f"{r}x{r}_Conv1"))
            self.epilogues.append(epilogue(2 * res - 3, nf(res - 1), f"{r}x{r}_Conv1"))
        # torgbs[res - 2] is the original's ToRGB_lod{L - res}.
        self.torgbs = [ToRGB(self.num_channels, nf(res - 1), use_wscale=self.use_wscale, name=f"ToRGB_lod{L - res}")
                       for res in range(2, L + 1)]
        self.built = True

    def nf(self, stage):
        return _nf(stage, self.fmap_base, self.fmap_decay, self.fmap_max)

    @property
    def max_level(self):
        return self.resolution_log2 - 2

    # -- pieces -----------------------------------------------------------------------------------------------
    def _noise(self, i, x, noise_mode, seed, noise=None):
        if not self.use_noise or noise_mode == "none":
            return None
        if noise is not None:
            return noise[i]
        if noise_mode == "const":
            return self.noise_buffers[i]
        return draws.normal((ops.shape(x)[0], x.shape[1], x.shape[2], 1), seed, salt=i, dtype=x.dtype)

    def _style(self, w, i):
        return w[:, i] if self.use_styles else w[:, 0]

    def _layer(self, i, x, w, noise_mode, seed, noise=None):
        return self.epilogues[i](x, self._style(w, i), noise=self._noise(i, x, noise_mode, seed, noise))

    def _base(self, w, noise_mode, seed, dtype=None, noise=None):
        """Layers 0 and 1: the 4x4 block (activations in `dtype`, default w's)."""
        if self.const_input_layer:
            x = self.input_layer(w)
        else:
            x = self.input_layer(w[:, 0])
            x = ops.transpose(ops.reshape(x, [-1, self.nf(1), 4, 4]), [0, 2, 3, 1])
        if dtype is not None:
            x = ops.cast(x, dtype)
        x = self._layer(0, x, w, noise_mode, seed, noise)
        return self._layer(1, self.convs[0](x), w, noise_mode, seed, noise)

    def _block(self, res, x, w, noise_mode, seed, noise=None):
        i = 2 * res - 4
        x = self._layer(i, self.blurs[res - 3](self.convs[i - 1](x)), w, noise_mode, seed, noise)
        return self._layer(i + 1, self.convs[i](x), w, noise_mode, seed, noise)

    # -- forward ----------------------------------------------------------------------------------------------
    def call(self, w, lod=0.0, level=None, noise_mode="random", fade=True, seed=None, dtype=None, noise=None):
        """w [N, num_styles, dlatent_size] -> images NHWC (full size if level is None, else R/2**level).
        `seed`: makes random noise stateless (see `draws`). `dtype`: the activations' dtype (None: the layers'
        own; "bfloat16" for a bf16 inference inside `inference.computing_in`); styles stay float32.
        `noise`: per-image noise maps, one [N, H, W, 1] per layer, used instead of the stored buffers or fresh
        draws (unless noise_mode is "none"); generate.py draws each seed's maps from that seed."""
        check_noise_mode(noise_mode)
        w = ops.convert_to_tensor(w, "float32")
        lod = ops.cast(lod, "float32")
        L = self.resolution_log2
        x = self._base(w, noise_mode, seed, dtype, noise)
        if level is None:
            img = self.torgbs[0](x)
            for res in range(3, L + 1):
                x = self._block(res, x, w, noise_mode, seed, noise)
                img = lerp_clip(self.torgbs[res - 2](x), upscale2d(img), lod - float(L - res))
            return img
        level = int(level)
        if not 0 <= level <= self.max_level:
            raise ValueError(f"level must be in [0, {self.max_level}] for resolution {self.resolution}, got {level}")
        top = L - level
        prev = x
        for res in range(3, top + 1):
            prev = x
            x = self._block(res, x, w, noise_mode, seed, noise)
        img = self.torgbs[top - 2](x)
        if top > 2 and fade:
            low = upscale2d(self.torgbs[top - 3](prev))
            img = lerp(img, low, ops.clip(lod - float(level), 0.0, 1.0))
        return img

    def multi_scale(self, w, noise_mode="random", seed=None):
        """Every level's ToRGB output, lowest first: [4x4, 8x8, ..., RxR] (MSG-GAN's multi-scale outputs).

        The same blocks and ToRGB layers as `call`, without progressive growing: the last entry equals
        `call(w, lod=0, level=0)` (and `level=None` at lod 0). `call` itself is unchanged by this method.

        Args:
            w: [N, num_styles, dlatent_size] dlatents.
            noise_mode: "random", "const" or "none".
            seed: [2] int tensor making random noise stateless (see `draws`), or None.

        Returns:
            A list of `resolution_log2 - 1` NHWC images.

        Example:
            >>> s = SynthesisNetwork(dlatent_size=16, resolution=16, fmap_max=16)
            >>> [x.shape[1] for x in s.multi_scale(ops.zeros([2, s.num_styles, 16]))]
            [4, 8, 16]
        """
        check_noise_mode(noise_mode)
        w = ops.convert_to_tensor(w, "float32")
        x = self._base(w, noise_mode, seed)
        images = [self.torgbs[0](x)]
        for res in range(3, self.resolution_log2 + 1):
            x = self._block(res, x, w, noise_mode, seed)
            images.append(self.torgbs[res - 2](x))
        return images

    def get_config(self):
        return {**super().get_config(), "dlatent_size": self.dlatent_size, "num_channels": self.num_channels,
                "resolution": self.resolution, "fmap_base": self.fmap_base, "fmap_decay": self.fmap_decay,
                "fmap_max": self.fmap_max, "use_styles": self.use_styles,
                "const_input_layer": self.const_input_layer, "use_noise": self.use_noise,
                "nonlinearity": self.nonlinearity, "use_wscale": self.use_wscale,
                "use_pixel_norm": self.use_pixel_norm, "use_instance_norm": self.use_instance_norm,
                "fused_scale": self.fused_scale, "blur_filter": self.blur_filter}
