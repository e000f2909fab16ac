"""MSG-GAN (Karnewar & Wang, "MSG-GAN: Multi-Scale Gradients for Generative Adversarial Networks", arXiv
1903.06048): the generator emits an RGB image at every resolution from 4x4 up, the discriminator takes each one
in at the matching scale, so D's gradients reach every level of G directly. No progressive growing, no fade.

Two architectures of the paper, both built from our StyleGAN layers and networks (nothing copied):
- `msg-stylegan` (MSG-StyleGAN): StyleGAN's mapping + synthesis (`Generator`, `SynthesisNetwork.multi_scale`)
  with the MSG discriminator.
- `msggan` (the paper's MSG-ProGAN): the same synthesis network in ProGAN's configuration (z pixel-normalised,
  dense 4x4 input, pixel norm, no mapping layers, styles, noise or blur) with the MSG discriminator.

The discriminator is StyleGAN's D_basic (FromRGB, per-resolution blocks, minibatch-stddev 4x4 block) where the
image of each lower resolution joins the features entering that resolution through a combine function phi
(paper section 3; x1 the image o_i, x2 D's activations a_j, r' a learned 1x1 convolution):
    cat      phi_simple(x1, x2)  = [x1; x2]
    lin_cat  phi_lin_cat(x1, x2) = [r'(x1); x2]
    cat_lin  phi_cat_lin(x1, x2) = r'([x1; x2])
r' is linear (1x1 equalized conv, gain 1, no bias, no activation). In `lin_cat` it maps the image to as many
channels as the features it joins; in `cat_lin` it maps the concatenation back to the features' width.
"""
import numpy as np
from keras import ops

from stylegan_tf.layers import EqualizedConv2D, FromRGB, downscale2d
from stylegan_tf.layers.blur import blur_filter_list
from stylegan_tf.layers.resample import resolve_fused
from stylegan_tf.layers.serialization import register
from stylegan_tf.networks import draws
from stylegan_tf.networks.archs import register_arch
from stylegan_tf.networks.base import ImageNetwork
from stylegan_tf.networks.channels import nf as _nf
from stylegan_tf.networks.channels import resolution_log2
from stylegan_tf.networks.discriminator import (DiscriminatorBlock, DiscriminatorFinalBlock, project_labels,
                                                 run_inputs)
from stylegan_tf.networks.generator import Generator
from stylegan_tf.networks.inference import batched, compiled

COMBINES = ("cat", "lin_cat", "cat_lin")


def _check_level(level, who):
    if level not in (None, 0):
        raise ValueError(f"{who} has no progressive growing: level must be None or 0, got {level}")


@register
class MSGGenerator(Generator):
    """MSG-StyleGAN's generator: StyleGAN's `Generator` whose call returns every level's ToRGB output.

    Same constructor arguments (official names and defaults, incl. the mapping options) and the same weights as
    `Generator`: `G(z, ...)` returns the list [4x4, 8x8, ..., RxR] (lowest first) that training feeds to the
    MSG discriminator; the numpy API (`run`, `map_latents`, `synthesize`) and generate.py/metrics give the
    full-resolution image, which is the list's last entry. `lod` stays 0 (no growing).

    Example:
        >>> G = MSGGenerator(resolution=16, num_channels=3, latent_size=16, dlatent_size=16, fmap_max=16)
        >>> [x.shape[1] for x in G(np.zeros([2, 16], np.float32))]
        [4, 8, 16]
        >>> G.run(np.zeros([2, 16], np.float32)).shape
        (2, 16, 16, 3)
    """
    arch_name = "msg-stylegan"

    def call(self, z, labels=None, training=False, level=None, noise_mode=None, truncation_psi=None,
             truncation_cutoff=None, lod=None, seed=None):
        """As `Generator.call` (training: dlatent_avg update, style mixing, random noise), returning the list
        of every level's image, lowest first."""
        _check_level(level, "an MSG generator")
        lod = self.lod if lod is None else ops.cast(lod, "float32")
        w, noise_mode = self.call_dlatents(z, labels, training, noise_mode, truncation_psi, truncation_cutoff,
                                           lod, seed)
        # The same seed salts as Generator.call (2: the noise maps).
        return self.synthesis.multi_scale(w, noise_mode=noise_mode, seed=draws.child(seed, 2))


def progan_generator_kwargs(latent_size=512, label_size=0):
    """The options that make our synthesis network ProGAN's generator (StyleGAN paper's baseline, config A, with
    ProGAN's plain nearest-upsampling convs: no blur): z pixel-normalised (no mapping layers), a dense 4x4 input,
    pixel norm after every conv, no styles, noise, style mixing, truncation or dlatent average."""
    return dict(mapping_layers=0, dlatent_size=int(latent_size) * (2 if label_size else 1), use_styles=False,
                const_input_layer=False, use_noise=False, use_pixel_norm=True, use_instance_norm=False,
                blur_filter=None, style_mixing_prob=None, truncation_psi=None, truncation_cutoff=None,
                dlatent_avg_beta=None)


@register
class MSGProGANGenerator(MSGGenerator):
    """MSG-GAN's generator as in the paper's MSG-ProGAN: `MSGGenerator` in ProGAN's configuration
    (`progan_generator_kwargs`); any of those may still be given explicitly.

    Example:
        >>> G = MSGProGANGenerator(resolution=16, num_channels=3, latent_size=16, fmap_max=16)
        >>> G.mapping.mapping_layers, G.synthesis.use_styles, [x.shape[1] for x in G(np.zeros([1, 16]))]
        (0, False, [4, 8, 16])
    """
    arch_name = "msggan"

    def __init__(self, latent_size=512, label_size=0, **kwargs):
        for k, v in progan_generator_kwargs(latent_size, label_size).items():
            kwargs.setdefault(k, v)
        super().__init__(latent_size=latent_size, label_size=label_size, **kwargs)


@register
class MSGDiscriminator(ImageNetwork):
    """MSG-GAN's discriminator: D(images, labels=None, training=False, level=None) -> scores [N, 1].

    `images` is the pyramid, a list [4x4, 8x8, ..., RxR] lowest first (what `MSGGenerator` returns and the
    dataset's level files hold), or one full-resolution image batch, which is box-downsampled to the pyramid (as
    the dataset's levels are made). The top image enters through FromRGB; after each block at resolution r the
    image at r/2 is combined with the features by `combine` ("cat", "lin_cat" or "cat_lin", see the module
    docstring). StyleGAN's D_basic arguments otherwise (blocks, minibatch stddev, label projection).

    Example:
        >>> D = MSGDiscriminator(resolution=16, num_channels=3, fmap_max=16, combine="lin_cat")
        >>> D([np.zeros([4, r, r, 3], np.float32) for r in (4, 8, 16)]).shape
        (4, 1)
    """
    arch_name = "msg"

    def __init__(self, resolution=32, num_channels=1, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                 nonlinearity="lrelu", use_wscale=True, mbstd_group_size=4, mbstd_num_features=1,
                 fused_scale="auto", blur_filter=(1, 2, 1), combine="cat", **kwargs):
        super().__init__(**kwargs)
        L = resolution_log2(resolution)
        resolve_fused(fused_scale, 4)
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {', '.join(COMBINES)}, got {combine!r}")
        self._args = dict(
            resolution=int(resolution), num_channels=int(num_channels), label_size=int(label_size),
            fmap_base=int(fmap_base), fmap_decay=float(fmap_decay), fmap_max=int(fmap_max),
            nonlinearity=nonlinearity, use_wscale=bool(use_wscale), mbstd_group_size=int(mbstd_group_size),
            mbstd_num_features=int(mbstd_num_features), fused_scale=fused_scale,
            blur_filter=blur_filter_list(blur_filter), combine=combine)
        a = self._args
        C = a["num_channels"]
        nf = lambda s: _nf(s, a["fmap_base"], a["fmap_decay"], a["fmap_max"])  # noqa: E731
        self.resolution_log2 = L
        self.fromrgb = FromRGB(nf(L - 1), C, nonlinearity, a["use_wscale"], name="FromRGB_lod0")
        # blocks[k]: the block at resolution R/2**k (k < L-2); combines[k]: joins the image at R/2**(k+1) to
        # its output (nf(L-k-2) channels); `extra[k]` is what the combine adds to the next block's input width.
        self.blocks, self.combines, extra = [], [], []
        for k in range(L - 2):
            res = L - k
            r = 2 ** res
            width = nf(res - 2)   # the block's output width = features entering resolution r/2
            if combine == "lin_cat":
                self.combines.append(EqualizedConv2D(width, C, 1, gain=1.0, use_wscale=a["use_wscale"],
                                                     name=f"{r // 2}x{r // 2}_combine"))
                extra.append(width)
            elif combine == "cat_lin":
                self.combines.append(EqualizedConv2D(width, width + C, 1, gain=1.0, use_wscale=a["use_wscale"],
                                                     name=f"{r // 2}x{r // 2}_combine"))
                extra.append(0)
            else:
                self.combines.append(None)
                extra.append(C)
            in_ch = nf(res - 1) + (extra[k - 1] if k else 0)
            self.blocks.append(DiscriminatorBlock(in_ch, nf(res - 1), width, fused=resolve_fused(fused_scale, r),
                                                  blur_filter=a["blur_filter"], nonlinearity=nonlinearity,
                                                  use_wscale=a["use_wscale"], name=f"{r}x{r}"))
        self.final_block = DiscriminatorFinalBlock(nf(1) + (extra[-1] if extra else 0), nf(1), nf(0),
                                                   max(a["label_size"], 1), a["mbstd_group_size"],
                                                   a["mbstd_num_features"], nonlinearity, a["use_wscale"], name="4x4")
        # The pipeline assigns `lod` to every network; an MSG network ignores it (no growing).
        self.lod = self.add_weight(name="lod", shape=(), initializer="zeros", trainable=False)
        self._fns = {}
        self.built = True

    combine = property(lambda self: self._args["combine"])
    max_level = property(lambda self: 0)

    def pyramid(self, images):
        """The input as the list of levels, lowest first; checks the shapes."""
        L = self.resolution_log2
        C = self.num_channels
        if isinstance(images, (list, tuple)):
            levels = [ops.convert_to_tensor(x, "float32") for x in images]
        else:
            top = ops.convert_to_tensor(images, "float32")
            levels = [top]
            for _ in range(L - 2):
                levels.insert(0, downscale2d(levels[0]))
        want = [(2 ** res, 2 ** res, C) for res in range(2, L + 1)]
        got = [tuple(x.shape[1:]) for x in levels]
        if got != want:
            raise ValueError(f"MSG discriminator: expected images {want} (lowest first, NHWC) or one "
                             f"{want[-1]} batch, got {got}")
        return levels

    def _combine(self, k, image, x):
        conv = self.combines[k]
        image = ops.cast(image, x.dtype)
        if self.combine == "cat":
            return ops.concatenate([image, x], axis=-1)
        if self.combine == "lin_cat":
            return ops.concatenate([conv(image), x], axis=-1)
        return conv(ops.concatenate([image, x], axis=-1))

    def call(self, images, labels=None, training=False, level=None, lod=None, fade=True):
        _check_level(level, "an MSG discriminator")
        levels = self.pyramid(images)
        x = self.fromrgb(levels[-1])
        for k, block in enumerate(self.blocks):
            # block k runs at R/2**k; its output (at R/2**(k+1)) meets the image at that resolution.
            x = self._combine(k, levels[-2 - k], block(x))
        return project_labels(self.final_block(x), labels, self.label_size)

    def run(self, images, labels=None, batch_size=32, **_):
        """images NHWC float32 at full resolution ([-1, 1] range; numpy) -> scores [N, 1] numpy.

        Batches must split into minibatch-stddev groups, as for StyleGAN's `Discriminator.run`."""
        images, labels = run_inputs(self, images, labels)
        key = ("run", labels is not None)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = compiled(lambda x, lb: self.call(x, lb), self.variables)
        out = batched(fn, [images, labels], batch_size)
        return np.zeros([0, 1], np.float32) if out is None else out


# -- the architectures ------------------------------------------------------------------------------------------
def _discriminator(opts, resolution, num_channels, label_size, combine, **extra):
    if getattr(opts, "mbstd_group_size", None) is not None:
        extra["mbstd_group_size"] = int(opts.mbstd_group_size)
    return MSGDiscriminator(resolution=resolution, num_channels=num_channels, label_size=label_size,
                            fmap_base=opts.fmap_base, fmap_max=opts.fmap_max, fmap_decay=opts.fmap_decay,
                            combine=getattr(opts, "msg_combine", None) or combine, **extra)


def build_msg_stylegan(opts, resolution, num_channels, label_size):
    """MSG-StyleGAN's G and D: StyleGAN's generator options (incl. --config and the mapping options) exactly as
    the stylegan arch reads them, D with the `cat_lin` combine (what the official MSG-StyleGAN code uses)."""
    from stylegan_tf.networks.stylegan_arch import stylegan_kwargs
    g_kw, _ = stylegan_kwargs(opts, resolution, num_channels, label_size)
    return MSGGenerator(**g_kw), _discriminator(opts, resolution, num_channels, label_size, "cat_lin")


def build_msggan(opts, resolution, num_channels, label_size):
    """MSG-GAN's (MSG-ProGAN's) G and D: ProGAN's generator and discriminator (no blur) with the `cat` combine
    (phi_simple)."""
    G = MSGProGANGenerator(resolution=resolution, num_channels=num_channels, label_size=label_size,
                           latent_size=opts.latent_size, fmap_base=opts.fmap_base, fmap_max=opts.fmap_max,
                           fmap_decay=opts.fmap_decay)
    return G, _discriminator(opts, resolution, num_channels, label_size, "cat", blur_filter=None)


# Both: the paper's fixed learning rate 0.003 for G and D (Adam 0, 0.99, 1e-8 as StyleGAN's), all levels trained
# together at full resolution from the start.
MSG_STYLEGAN_DEFAULTS = dict(lrate=0.003, loss="logistic", gamma=10.0)
MSGGAN_DEFAULTS = dict(lrate=0.003, loss="ra-hinge", gamma=0.0)
# The demo (train.py without --data): the demo faces at 32x32 with StyleGAN's small demo widths.
MSG_DEMO = dict(resolution=32, total_kimg=32.0, minibatch=16, tick_kimg=4.0, snap_ticks=4, mirror=True,
                fmap_base=256, fmap_max=64, latent_size=64, dlatent_size=64, mapping_layers=4, mapping_fmaps=64,
                g_smoothing_kimg=1.0)

register_arch("msg-stylegan", build=build_msg_stylegan, data="pyramid", defaults=MSG_STYLEGAN_DEFAULTS,
              demo=MSG_DEMO, progressive=False, gs="ema", styles=True, sizing="fmap", min_resolution=8,
              description="MSG-StyleGAN (Karnewar & Wang 2019): StyleGAN's G with an RGB output per level, MSG D, "
              "no growing")
register_arch("msggan", build=build_msggan, data="pyramid", defaults=MSGGAN_DEFAULTS, demo=MSG_DEMO,
              progressive=False, gs="ema", styles=False, sizing="fmap", min_resolution=8,
              description="MSG-GAN (Karnewar & Wang 2019, MSG-ProGAN): ProGAN G with an RGB output per level, MSG D, "
              "relativistic average hinge")
