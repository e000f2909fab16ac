"""Style-based generator (G_style): mapping + synthesis, with lod, dlatent_avg, style mixing and truncation."""
import numpy as np
from keras import ops

from stylegan_tf.layers import upscale2d
from stylegan_tf.layers.blur import blur_filter_list
from stylegan_tf.layers.noise import check_noise_mode
from stylegan_tf.layers.serialization import register
from stylegan_tf.networks import draws
from stylegan_tf.networks.base import ImageNetwork
from stylegan_tf.networks.channels import resolution_log2
from stylegan_tf.networks.inference import (PRECISIONS, batched, check_latents, check_precision, compiled,
                                            computing_in, level_for_lod)
from stylegan_tf.networks.mapping import get_mapping, make_mapping
from stylegan_tf.networks.style_mixing import mix_styles, mixing_cutoff
from stylegan_tf.networks.synthesis import SynthesisNetwork
from stylegan_tf.networks.truncation import truncate

_MAPPING_ARGS = ("latent_size", "label_size", "dlatent_size", "mapping_layers", "mapping_fmaps", "mapping_lrmul",
                 "mapping_nonlinearity", "use_wscale", "normalize_latents")
_SYNTHESIS_ARGS = ("dlatent_size", "num_channels", "resolution", "fmap_base", "fmap_decay", "fmap_max",
                   "use_styles", "const_input_layer", "use_noise", "nonlinearity", "use_wscale", "use_pixel_norm",
                   "use_instance_norm", "fused_scale", "blur_filter")


@register
class Generator(ImageNetwork):
    """G(z, labels=None, training=False, level=None) -> images NHWC.

    Constructor arguments carry the official names and defaults (G_style + G_mapping + G_synthesis).
    `truncation_psi`/`truncation_cutoff` are stored as the original's defaults for tools that want them; they
    are never applied unless passed to a call or to `run`.
    """

    def __init__(self, resolution=1024, num_channels=3, label_size=0, latent_size=512, dlatent_size=512,
                 mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu",
                 normalize_latents=True, fmap_base=8192, fmap_decay=1.0, fmap_max=512, use_styles=True,
                 const_input_layer=True, use_noise=True, nonlinearity="lrelu", use_wscale=True,
                 use_pixel_norm=False, use_instance_norm=True, fused_scale="auto", blur_filter=(1, 2, 1),
                 truncation_psi=0.7, truncation_cutoff=8, dlatent_avg_beta=0.995, style_mixing_prob=0.9,
                 mapping="fc", **kwargs):
        super().__init__(**kwargs)
        resolution_log2(resolution)
        self._args = dict(
            resolution=int(resolution), num_channels=int(num_channels), label_size=int(label_size),
            latent_size=int(latent_size), dlatent_size=int(dlatent_size), mapping_layers=int(mapping_layers),
            mapping_fmaps=int(mapping_fmaps), mapping_lrmul=float(mapping_lrmul),
            mapping_nonlinearity=mapping_nonlinearity, normalize_latents=bool(normalize_latents),
            fmap_base=int(fmap_base), fmap_decay=float(fmap_decay), fmap_max=int(fmap_max),
            use_styles=bool(use_styles), const_input_layer=bool(const_input_layer), use_noise=bool(use_noise),
            nonlinearity=nonlinearity, use_wscale=bool(use_wscale), use_pixel_norm=bool(use_pixel_norm),
            use_instance_norm=bool(use_instance_norm), fused_scale=fused_scale,
            blur_filter=blur_filter_list(blur_filter),
            truncation_psi=None if truncation_psi is None else float(truncation_psi),
            truncation_cutoff=None if truncation_cutoff is None else int(truncation_cutoff),
            dlatent_avg_beta=None if dlatent_avg_beta is None else float(dlatent_avg_beta),
            style_mixing_prob=None if style_mixing_prob is None else float(style_mixing_prob),
            mapping=str(mapping))
        a = self._args
        self.synthesis = SynthesisNetwork(**{k: a[k] for k in _SYNTHESIS_ARGS}, name="G_synthesis")
        # `mapping` names the mapping network (networks/mapping.py registry): "fc" is the official one; the
        # per-level variants v1..v4 give each resolution level its own style (networks/mapping_variants.py).
        if get_mapping(a["mapping"]).per_level and not a["use_styles"]:
            raise ValueError(f"--mapping {a['mapping']} gives each level a style: it needs use_styles "
                             "(config B has one input, no styles)")
        self.mapping = make_mapping(a["mapping"], **{k: a[k] for k in _MAPPING_ARGS},
                                    dlatent_broadcast=self.synthesis.num_styles, name="G_mapping")
        self.lod = self.add_weight(name="lod", shape=(), initializer="zeros", trainable=False)
        # Updated inside replicas during training: averaged across them under a distribution strategy.
        # [dlatent_size] for the official mapping (one w); one row per style row for a per-level mapping.
        avg_shape = ((self.num_styles, a["dlatent_size"]) if self.per_level_styles else (a["dlatent_size"],))
        self.dlatent_avg = self.add_weight(name="dlatent_avg", shape=avg_shape, initializer="zeros",
                                           trainable=False, aggregation="mean")
        self._fns = {}
        self.built = True

    # -- facts other parts use ------------------------------------------------------------------------------------
    latent_size = property(lambda self: self._args["latent_size"])
    dlatent_size = property(lambda self: self._args["dlatent_size"])
    num_layers = property(lambda self: self.synthesis.num_layers)
    num_styles = property(lambda self: self.synthesis.num_styles)
    max_level = property(lambda self: self.synthesis.max_level)
    resolution_log2 = property(lambda self: self.synthesis.resolution_log2)
    truncation_psi = property(lambda self: self._args["truncation_psi"])
    truncation_cutoff = property(lambda self: self._args["truncation_cutoff"])
    dlatent_avg_beta = property(lambda self: self._args["dlatent_avg_beta"])
    style_mixing_prob = property(lambda self: self._args["style_mixing_prob"])
    mapping_kind = property(lambda self: self._args["mapping"])
    per_level_styles = property(lambda self: bool(getattr(self.mapping, "per_level", False)))

    @property
    def style_levels(self):
        """int32 [num_styles]: the style level of each style row. Rows of one level always hold the same style:
        for the official mapping every row is its own level (one w, mixable anywhere); for v1..v4 the levels
        are the mapping's per-resolution styles."""
        if self.per_level_styles:
            return np.asarray(self.mapping.style_of_row(), np.int32)
        return np.arange(self.num_styles, dtype=np.int32)

    @property
    def mixing_boundaries(self):
        """The rows where style mixing may start the second latent's styles (level boundaries)."""
        lv = self.style_levels
        return [r for r in range(1, len(lv)) if lv[r] != lv[r - 1]]

    def noise_buffers(self):
        return list(self.synthesis.noise_buffers)

    # -- graph-friendly forward -----------------------------------------------------------------------------------
    def call(self, z, labels=None, training=False, level=None, noise_mode=None, truncation_psi=None,
             truncation_cutoff=None, lod=None, seed=None):
        """Training (`training=True`): updates dlatent_avg, applies style mixing, random noise.
        Otherwise: no mixing, truncation only if `truncation_psi` is given, noise `noise_mode` (default random).
        `seed` ([2] int tensor): draw mixing latents/cutoffs and noise statelessly from it (see `draws`)."""
        lod = self.lod if lod is None else ops.cast(lod, "float32")
        w, noise_mode = self.call_dlatents(z, labels, training, noise_mode, truncation_psi, truncation_cutoff,
                                           lod, seed)
        # seed salts: 0 the mixing latents, 1 the cutoff, 2 the noise maps
        return self.synthesis(w, lod=lod, level=level, noise_mode=noise_mode, seed=draws.child(seed, 2))

    def call_dlatents(self, z, labels, training, noise_mode, truncation_psi, truncation_cutoff, lod, seed):
        """The dlatents `call` synthesizes from, and its noise mode: mapping, then (training) the dlatent_avg
        update and style mixing, or (inference) truncation if asked. Shared with generators that synthesize
        differently (MSG-StyleGAN's multi-scale outputs, networks/msg.py)."""
        w = self.mapping(z, labels)
        if training:
            if self.dlatent_avg_beta is not None and self.dlatent_avg_beta != 1.0:
                batch_avg = ops.mean(w, axis=0) if self.per_level_styles else ops.mean(w[:, 0], axis=0)
                self.dlatent_avg.assign(batch_avg + (self.dlatent_avg - batch_avg) * self.dlatent_avg_beta)
            if self.style_mixing_prob and self.num_styles > 1:
                w2 = self.mapping(draws.normal(ops.shape(z), seed, salt=0), labels)
                # A per-level mapping mixes only at a level boundary (the official one: at any layer).
                bounds = self.mixing_boundaries if self.per_level_styles else None
                w = mix_styles(w, w2, mixing_cutoff(self.num_styles, lod, self.style_mixing_prob, draws.child(seed, 1),
                                                    boundaries=bounds))
            noise_mode = "random" if noise_mode is None else noise_mode
        elif truncation_psi is not None:
            w = truncate(w, self.dlatent_avg, truncation_psi, truncation_cutoff)
        return w, noise_mode or "random"

    # -- numpy inference API --------------------------------------------------------------------------------------
    def _fn(self, key, build):
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = compiled(build(), self.variables)
        return fn

    def _lod_value(self, lod):
        return float(ops.convert_to_numpy(self.lod)) if lod is None else float(lod)

    def _check_z(self, z, labels):
        return check_latents(self, z, labels)

    def map_latents(self, z, labels=None, batch_size=256):
        """z [N, latent_size] -> w [N, num_layers, dlatent_size] (numpy), no truncation. With a per-level mapping
        (v1..v4) each level's rows hold that level's own style (`style_levels`)."""
        z, labels = self._check_z(z, labels)

        def build():
            def f(z, labels=None):
                return self.mapping(z, labels)
            return f

        fn = self._fn(("map",), build)
        out = batched(fn, [z, labels], batch_size)
        return np.zeros([0, self.num_styles, self.dlatent_size], np.float32) if out is None else out

    def _synth_graph(self, lod, noise_mode, precision="fp32", noise_seed=None):
        level, fade = level_for_lod(lod, self.max_level)
        dtype = None if precision == "fp32" else PRECISIONS[precision]

        def synth(w, lod_t, seed, *noise):
            img = self.synthesis(w, lod=lod_t, level=level, noise_mode=noise_mode, fade=fade, seed=seed,
                                 dtype=dtype, noise=list(noise) or None)
            return upscale2d(ops.cast(img, "float32"), 2 ** level)
        # Random noise is drawn per call (from `noise_seed`'s stream when given); every other mode draws nothing.
        if noise_mode != "random":
            seed = lambda: None    # noqa: E731
        else:
            seed = draws.call_seed if noise_seed is None else draws.seed_stream(noise_seed)
        return level, fade, synth, seed

    def synthesize(self, w, noise_mode="const", lod=None, batch_size=32, precision="fp32", noise=None):
        """w [N, num_layers, dlatent_size] -> images NHWC float32 at full resolution (raw range).

        Args:
            w: dlatents, numpy [N, num_styles, dlatent_size].
            noise_mode: "const" (stored buffers), "random" or "none".
            lod: level of detail (None: the network's `lod`).
            batch_size: images per compiled call.
            precision: "fp32" (faithful) or "bf16" (bfloat16 synthesis: faster on AMX CPUs, changes images).
            noise: per-image noise maps instead of `noise_mode`'s: a list with one [N, H, W, 1] array per
                layer (the shapes of `noise_buffers()` with N rows); each image uses its own row.

        Example:
            >>> maps = [np.random.randn(len(w), *b.shape[1:]) for b in G.noise_buffers()]
            >>> images = G.synthesize(w, noise=maps)
        """
        check_noise_mode(noise_mode)
        check_precision(precision)
        w = np.asarray(w, dtype=np.float32)
        if w.ndim != 3 or w.shape[1:] != (self.num_styles, self.dlatent_size):
            raise ValueError(f"w must have shape [N, {self.num_styles}, {self.dlatent_size}], got {list(w.shape)}")
        noise = [] if noise is None else self._check_noise(noise, len(w))
        if noise:
            noise_mode = "const"    # the key of the compiled function; the maps replace the buffers
        lod = self._lod_value(lod)
        level, fade, synth, seed = self._synth_graph(lod, noise_mode, precision)
        fn = self._fn(("synth", level, fade, noise_mode, precision, bool(noise)), lambda: synth)
        lod_t = ops.convert_to_tensor(lod, "float32")
        with computing_in(self.synthesis, precision):
            out = batched(lambda wb, *nb: fn(wb, lod_t, seed(), *nb), [w, *noise], batch_size)
        return self._empty() if out is None else out

    def run(self, z, labels=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="const", lod=None,
            batch_size=32, precision="fp32", noise_seed=None):
        """z [N, latent_size] (+ labels) -> images NHWC float32 at full resolution, raw output range.
        `precision` "bf16" computes the synthesis in bfloat16 (the mapping stays float32); fp32 is faithful.
        `noise_seed` (an int) makes noise_mode="random" reproducible: the same z, batch_size and seed give the
        same images on every run (without it the backend's global generator draws, as in the original)."""
        check_noise_mode(noise_mode)
        check_precision(precision)
        z, labels = self._check_z(z, labels)
        lod = self._lod_value(lod)
        truncated = truncation_psi is not None and float(truncation_psi) != 1.0 and \
            (truncation_cutoff is None or int(truncation_cutoff) > 0)
        level, fade, synth, seed = self._synth_graph(lod, noise_mode, precision, noise_seed)

        def build():
            def f(z, labels, lod_t, psi, cutoff, seed):
                w = self.mapping(z, labels)
                if truncated:
                    w = truncate(w, self.dlatent_avg, psi, cutoff)
                return synth(w, lod_t, seed)
            return f

        seeded = noise_mode == "random" and noise_seed is not None    # TF traces a seed tensor apart from None
        fn = self._fn(("run", level, fade, noise_mode, truncated, labels is not None, precision, seeded), build)
        lod_t = ops.convert_to_tensor(lod, "float32")
        psi = ops.convert_to_tensor(1.0 if truncation_psi is None else float(truncation_psi), "float32")
        cutoff = self.num_styles if truncation_cutoff is None else int(truncation_cutoff)
        cutoff = ops.convert_to_tensor(cutoff, "int32")
        with computing_in(self.synthesis, precision):
            out = batched(lambda zb, lb: fn(zb, lb, lod_t, psi, cutoff, seed()), [z, labels], batch_size)
        return self._empty() if out is None else out

    def _check_noise(self, noise, n):
        shapes = [tuple(b.shape[1:]) for b in self.noise_buffers()]
        noise = [np.asarray(m, np.float32) for m in noise]
        if not shapes or [m.shape for m in noise] != [(n,) + s for s in shapes]:
            want = ", ".join(str([n, *s]) for s in shapes) or "none (built without noise inputs)"
            raise ValueError(f"noise must be one map per layer with shapes {want}; got "
                             f"{[list(m.shape) for m in noise]}")
        return noise

    def _empty(self):
        return np.zeros([0, self.resolution, self.resolution, self.num_channels], np.float32)
