"""The explorer's model side: one loaded network and every picture the browser asks of it, as numpy arrays.

No Gradio here: the app (`app.py`), the benchmark and the tests drive the same `Explorer`. Every number a
control sends is checked here with the valid range in the message, so a bad request is one line in the page
and the server keeps serving. The pictures are made with generate's and editing's own functions, so a seed
shows what `generate.py images` writes for it.
"""
import collections
import os
import threading

import numpy as np

from stylegan_tf.editing.errors import EditError
from stylegan_tf.explore.capabilities import capabilities
from stylegan_tf.generate.seeds import MAX_SEED
from stylegan_tf.layers.noise import NOISE_MODES

PSI_RANGE = (-1.0, 1.5)
Z_VALUE_RANGE = (-10.0, 10.0)
MAX_GRID = 64
SOURCES_KEPT = 64  # style mixing's source pictures kept (at 256²: 192 KiB each)
# Projection steps offered in the page: NVIDIA's projector runs 1000; the CLI allows more for batch work.
MAX_PROJECTION_STEPS = 2000
# Edit amounts are standard deviations of W along a direction: past this many w has left the distribution the
# network was trained on.
MAX_AMOUNT = 20.0


class ExploreError(EditError):
    """A control value or an input the network cannot honour: shown as one line in the page."""


class Cancelled(Exception):
    """The user pressed Cancel during a projection."""


def _open(network):
    """(nets with .Gs and .D, the name the page shows) from a path, a Networks-like object or a lone Gs."""
    if hasattr(network, "Gs"):
        return network, type(network.Gs).__name__
    if hasattr(network, "run") and hasattr(network, "synthesize"):
        return _Lone(network), type(network).__name__
    from stylegan_tf.network_io import open_network
    return open_network(network, "--network", ExploreError), shown_name(network)


def shown_name(path):
    """A network file as the page names it: its run folder and file name. The folders above say nothing about
    the network, and a page may be shown to others (`--share`, screenshots).

    Example:
        >>> shown_name("/home/me/runs/results/00000-sgan-demo/network-snapshot-000160.keras")
        '00000-sgan-demo/network-snapshot-000160.keras'
    """
    path = os.path.normpath(str(path))
    return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


class _Lone:
    """A generator without its discriminator (projection then uses the pixel terms alone)."""

    def __init__(self, Gs):
        self.Gs, self.D = Gs, None


class Explorer:
    """A network ready for interactive use: mapping results cached per seed, compiled functions traced once.

    Thread-safe: the app serves several browsers at once, and the numpy inference API keeps per-network state
    (compiled functions, layer flags while tracing), so every generator call holds `lock`. Projection runs
    apart from it (see `project`) so that the sliders of other browsers stay live meanwhile.

    Args:
        network: a .keras snapshot / official .pkl path, or an object with .Gs (and .D).
        directions: optional directions file (path or `Directions`) for the attribute sliders.
        labeler: optional labeler (path or `Labeler`) that reads the shown image's attributes.
        cache_size: mapped seeds kept (w of a seed is the same every time: only the first visit maps it).

    Example:
        >>> ex = Explorer("results/00000-sgan-demo-32-1gpu/network-snapshot-000224.keras")
        >>> ex.image(seed=5, psi=0.7).shape
        (32, 32, 3)
    """

    def __init__(self, network, directions=None, labeler=None, cache_size=1024):
        self.nets, self.name = _open(network)
        self.Gs = self.nets.Gs
        self.directions = self.labeler = None
        if directions is not None:
            from stylegan_tf.editing.directions import load_directions
            self.directions = load_directions(directions, self.Gs)
        if labeler is not None:
            from stylegan_tf.editing.directions import check_labeler_fits
            from stylegan_tf.editing.labeler import load_labeler
            self.labeler = load_labeler(labeler)
            check_labeler_fits(self.labeler, self.Gs)
        self.why_not = capabilities(self.Gs, self.directions, self.labeler)
        self.lock = threading.RLock()
        self._projecting = threading.Lock()
        self._w_cache = collections.OrderedDict()
        self._sources = collections.OrderedDict()  # style mixing's source pictures, by seed and settings
        self._cache_size = int(cache_size)
        self.cache_hits = 0

    def warm_up(self):
        """Trace the functions the page uses (mapping, synthesis, the labeler, the projector's step in the
        page's default space), so that no browser waits for a trace: each is compiled once per network and
        kept."""
        image = self.image(0, class_idx=0 if self.label_size else None)
        if self.labeler is not None:
            self.readings(self.w_of([0], 0 if self.label_size else None)[0], image)
        if self.can("projection"):
            self.project(image, steps=1, space=self.projection_spaces[0])

    @property
    def projection_spaces(self):
        """The spaces a photo can be projected into, the page's default first."""
        return ["w", "w+"] if self.can("projection_w") else ["w+"]

    # -- the network's facts, for the page's controls ----------------------------------------------------------
    @property
    def num_styles(self):
        return int(getattr(self.Gs, "num_styles", 1))

    @property
    def latent_size(self):
        return int(self.Gs.latent_size)

    @property
    def label_size(self):
        return int(getattr(self.Gs, "label_size", 0) or 0)

    @property
    def resolution(self):
        return int(self.Gs.resolution)

    def can(self, feature):
        return self.why_not.get(feature) is None

    def need(self, feature):
        """ExploreError with the reason when the network cannot do `feature` (a key of `why_not`)."""
        if not self.can(feature):
            raise ExploreError(self.why_not[feature])

    # -- checks of control values ----------------------------------------------------------------------------------
    def _seed(self, seed, what="seed"):
        seed = _number(seed, what)
        if seed != int(seed):
            raise ExploreError(f"{what}: {seed:g} is not a whole number")
        return _in_range(int(seed), what, 0, MAX_SEED)

    def _class(self, class_idx):
        from stylegan_tf.generate.sampling import class_labels
        if self.label_size == 0:
            return None
        class_idx = 0 if class_idx is None else int(_number(class_idx, "class"))
        class_labels(self.Gs, class_idx, 1, "class")
        return class_idx

    def _truncation(self, psi, cutoff):
        if not self.can("truncation"):
            return 1.0, None
        psi = _in_range(float(_number(psi, "psi")), "psi", *PSI_RANGE)
        if cutoff is None:
            return psi, None
        cutoff = int(_number(cutoff, "cutoff"))
        if cutoff < 0:
            raise ExploreError(f"cutoff must be 0 or more (got {cutoff})")
        # As generate.py and NVIDIA's code: a cutoff past the last layer (the default 8 on a 16x16 network's 6)
        # truncates every layer.
        return psi, None if cutoff >= self.num_styles else cutoff

    def _noise(self, noise_mode, noise_seed, seed):
        if noise_mode not in NOISE_MODES:
            raise ExploreError(f"noise mode: '{noise_mode}' is not one of {', '.join(NOISE_MODES)}")
        if noise_mode == "random":
            # -1 (the default) follows the image's seed: what `generate.py images --noise-mode random` draws.
            noise_seed = seed if noise_seed is None or int(_number(noise_seed, "noise seed")) < 0 else noise_seed
            return noise_mode, self._seed(noise_seed, "noise seed")
        return noise_mode, None

    # -- latents ---------------------------------------------------------------------------------------------------
    def w_of(self, seeds, class_idx=None):
        """Untruncated w [N, num_styles, dlatent] of NVIDIA's seeds; each (seed, class) is mapped once."""
        from stylegan_tf.generate.sampling import class_labels, map_z
        from stylegan_tf.generate.seeds import seeds_to_z
        keys = [(int(s), class_idx) for s in seeds]
        with self.lock:
            todo = sorted({k for k in keys if k not in self._w_cache})
            self.cache_hits += len(keys) - sum(k in todo for k in keys)
            if todo:
                z = seeds_to_z([s for s, _ in todo], self.latent_size)
                ws = map_z(self.Gs, z, class_labels(self.Gs, class_idx, len(todo), "class"))
                for k, w in zip(todo, ws):
                    self._w_cache[k] = w
            out = np.stack([self._w_cache[k] for k in keys])
            for k in keys:
                self._w_cache.move_to_end(k)
            while len(self._w_cache) > self._cache_size:
                self._w_cache.popitem(last=False)
        return out

    def truncated(self, w, psi, cutoff):
        from stylegan_tf.generate.sampling import truncate_w
        return truncate_w(self.Gs, w, psi, cutoff)

    def synth(self, w, noise_mode="const", noise_seeds=None, noise=None):
        """w [N, L, D] -> uint8 images [N, H, W, C]. `noise_seeds`: one seed per image for random noise (its
        stream as `generate.py images` draws it); `noise`: a projection's maps ([1, r, r, 1] per layer)."""
        from stylegan_tf.generate.noise import noise_stream
        from stylegan_tf.generate.sampling import synthesize_w
        from stylegan_tf.image_grid import to_uint8
        w = np.asarray(w, np.float32)
        with self.lock:
            if noise is not None:
                maps = [np.repeat(np.asarray(m, np.float32), len(w), axis=0) for m in noise]
                return to_uint8(self.Gs.synthesize(w, noise_mode="const", noise=maps, batch_size=len(w)))
            rngs = None
            if noise_mode == "random" and self.can("noise"):
                rngs = [noise_stream(s, self.latent_size) for s in noise_seeds]
            elif not self.can("noise"):
                noise_mode = "const"
            return synthesize_w(self.Gs, w, noise_mode, max(len(w), 1), progress=False, noise_rng=rngs)

    def _from_z(self, z, class_idx, psi, cutoff):
        """Images of a network without a learned W (DCGAN, MSG-GAN): G(z) as the CLI draws it."""
        from stylegan_tf.generate.sampling import class_labels, run_z
        with self.lock:
            return run_z(self.Gs, z, class_labels(self.Gs, class_idx, len(z), "class"), psi, cutoff, "const",
                         max(len(z), 1), progress=False)

    # -- the tabs ----------------------------------------------------------------------------------------------------
    def images(self, seeds, psi=0.7, cutoff=8, class_idx=None, noise_mode="const", noise_seed=-1):
        """uint8 [N, H, W, C]: what `generate.py images --seeds ... --trunc psi --trunc-cutoff cutoff` writes.
        noise_seed -1: each image's own seed (as the CLI); another value: that seed's noise for every image."""
        seeds = [self._seed(s) for s in seeds]
        if not 1 <= len(seeds) <= MAX_GRID:
            raise ExploreError(f"grid: give 1 to {MAX_GRID} seeds (got {len(seeds)})")
        class_idx = self._class(class_idx)
        psi, cutoff = self._truncation(psi, cutoff)
        noise_seeds = [self._noise(noise_mode, noise_seed, s)[1] for s in seeds]
        if not self.can("w_space"):
            from stylegan_tf.generate.seeds import seeds_to_z
            return self._from_z(seeds_to_z(seeds, self.latent_size), class_idx, psi, cutoff)
        w = self.truncated(self.w_of(seeds, class_idx), psi, cutoff)
        return self.synth(w, noise_mode, noise_seeds)

    def image(self, seed, psi=0.7, cutoff=8, class_idx=None, noise_mode="const", noise_seed=-1):
        """One seed's picture (uint8 HWC); see `images`."""
        return self.images([seed], psi, cutoff, class_idx, noise_mode, noise_seed)[0]

    def layer_names(self):
        """A label per style layer: its index and the resolution it styles (two layers per resolution)."""
        return [f"{i} ({2 ** (2 + i // 2)}²)" for i in range(self.num_styles)]

    def preset(self, name):
        """Layer indices of a style-mixing preset (coarse / middle / fine / all / none), as `generate.py
        style-mixing --styles NAME`."""
        from stylegan_tf.generate.seeds import preset_layers
        self.need("mixing_presets")
        return preset_layers(name, self.num_styles)

    def mix(self, seed_a, seed_b, layers, psi=1.0, cutoff=None, class_idx=None, noise_mode="const", noise_seed=-1):
        """(A, B, A with `layers` taken from B) as uint8 HWC: one cell of the paper's Fig. 3."""
        from stylegan_tf.generate.figures import mix_styles
        self.need("mixing")
        seed_a, seed_b = self._seed(seed_a, "seed A"), self._seed(seed_b, "seed B")
        layers = self._layers(layers)
        class_idx = self._class(class_idx)
        psi, cutoff = self._truncation(psi, cutoff)
        noise_mode, nseed = self._noise(noise_mode, noise_seed, seed_a)
        w = self.truncated(self.w_of([seed_a, seed_b], class_idx), psi, cutoff)
        mixed = mix_styles(w[:1], w[1:], [layers], getattr(self.Gs, "style_levels", None))[0]
        # Moving the levels leaves both sources as they were: keep their pictures, so that such a change
        # synthesises one image, not three (at 256² synthesis is nearly all of a request's time).
        keys = [(s, class_idx, psi, cutoff, noise_mode, nseed) for s in (seed_a, seed_b)]
        with self.lock:
            todo = [i for i, k in enumerate(keys) if k not in self._sources]
            out = self.synth(np.concatenate([w[todo], mixed]), noise_mode, [nseed] * (len(todo) + 1))
            for i, image in zip(todo, out):
                self._sources[keys[i]] = image
            a, b = (self._sources[k] for k in keys)
            for k in keys:
                self._sources.move_to_end(k)
            while len(self._sources) > SOURCES_KEPT:
                self._sources.popitem(last=False)
        return a, b, out[-1]

    def _layers(self, layers):
        out = sorted({int(i) for i in layers or []})
        bad = [i for i in out if not 0 <= i < self.num_styles]
        if bad:
            raise ExploreError(f"layers: {bad[0]} is out of range; this network has layers 0-{self.num_styles - 1}")
        return out

    def walk(self, seed_a, seed_b, t, space="z", psi=1.0, cutoff=None, class_idx=None, noise_mode="const",
             noise_seed=-1):
        """The picture at fraction t from seed A to seed B: slerp in Z or lerp in W (`generate.py interpolate`)."""
        from stylegan_tf.generate.seeds import seeds_to_z
        from stylegan_tf.generate.video import lerp, slerp
        seed_a, seed_b = self._seed(seed_a, "seed A"), self._seed(seed_b, "seed B")
        t = _in_range(float(_number(t, "t")), "t", 0.0, 1.0)
        if space not in ("z", "w"):
            raise ExploreError(f"space: '{space}' must be z or w")
        class_idx = self._class(class_idx)
        psi, cutoff = self._truncation(psi, cutoff)
        if space == "w":
            self.need("w_space")
            w = lerp(*self.w_of([seed_a, seed_b], class_idx)[:, None], t).astype(np.float32)
        else:
            z = slerp(*seeds_to_z([seed_a, seed_b], self.latent_size)[:, None], t).astype(np.float32)
            if not self.can("w_space"):
                return self._from_z(z, class_idx, psi, cutoff)[0]
            w = self._map(z, class_idx)
        noise_mode, nseed = self._noise(noise_mode, noise_seed, seed_a)
        return self.synth(self.truncated(w, psi, cutoff), noise_mode, [nseed])[0]

    def _map(self, z, class_idx):
        from stylegan_tf.generate.sampling import class_labels, map_z
        with self.lock:
            return map_z(self.Gs, z, class_labels(self.Gs, class_idx, len(z), "class"))

    def z_walk(self, seed, dim, value, mode="set", psi=1.0, cutoff=None, class_idx=None, noise_mode="const",
               noise_seed=-1):
        """The seed's picture with z[dim] set to (or moved by) `value`: one cell of `generate.py z-walk`."""
        from stylegan_tf.generate.seeds import seed_to_z
        from stylegan_tf.generate.walks import z_walk_latents
        seed = self._seed(seed)
        dim = _in_range(int(_number(dim, "dimension")), "dimension", 0, self.latent_size - 1)
        value = _in_range(float(_number(value, "value")), "value", *Z_VALUE_RANGE)
        if mode not in ("set", "add"):
            raise ExploreError(f"mode: '{mode}' must be set or add")
        class_idx = self._class(class_idx)
        psi, cutoff = self._truncation(psi, cutoff)
        z = z_walk_latents(seed_to_z(seed, self.latent_size), [dim], [value], mode)
        if not self.can("w_space"):
            return self._from_z(z, class_idx, psi, cutoff)[0]
        noise_mode, nseed = self._noise(noise_mode, noise_seed, seed)
        return self.synth(self.truncated(self._map(z, class_idx), psi, cutoff), noise_mode, [nseed])[0]

    # -- attribute editing --------------------------------------------------------------------------------------------
    def edit(self, w, amounts, mode="linear", layers="all", noise=None, steps=200):
        """(edited w [L, D], uint8 HWC, readings) for one latent [L, D] moved by `amounts` {attribute: amount}.

        Each attribute's move is `editing.edit_w`'s (linear: along its direction with the others held; gradient:
        descending the two-layer predictor), applied one after another. Readings: `readings`."""
        from stylegan_tf.editing.edits import MODES, _layer_list, edit_w
        self.need("edit")
        if mode not in MODES:
            raise ExploreError(f"mode: '{mode}' is not one of {', '.join(MODES)}")
        layer_list = _layer_list(layers, self.num_styles)
        w = np.asarray(w, np.float32)[None]
        for key, amount in amounts.items():
            self.directions.index(key, "attribute")
            amount = _in_range(float(_number(amount, key)), key, -MAX_AMOUNT, MAX_AMOUNT)
            if amount:
                w = edit_w(self.directions, w, key, [amount], mode, layer_list, steps=steps)[:, 0]
        image = self.synth(w, noise=noise)[0]
        return w[0], image, self.readings(w[0], image)

    def readings(self, w, image):
        """{"predicted": {key: value}, "measured": {key: value}}: the two-layer predictor's reading of w and (with
        a labeler) the labeler's reading of the picture, in the labeler's units."""
        out = {}
        if self.directions is not None:
            predicted = self.directions.predict(np.asarray(w, np.float64)[None])[0]
            out["predicted"] = {k: round(float(v), 3) for k, v in zip(self.directions.keys, predicted)}
        if self.labeler is not None:
            from stylegan_tf.editing.edits import lab_keys
            keys = lab_keys(self.labeler)
            if keys:
                with self.lock:
                    scores = self.labeler.scores(np.asarray(image, np.float32)[None] / 127.5 - 1.0, keys)[0]
                out["measured"] = {k: round(float(v), 3) for k, v in zip(keys, scores)}
        return out

    # -- projection ---------------------------------------------------------------------------------------------------
    def project(self, target, steps=200, space="w", on_step=None, cancel=None, seed=0):
        """`editing.project` of a uint8 target [R, R, C] (see `load_photo`): the latent and noise maps that
        reproduce it, exactly as `generate.py project` finds them. `on_step(step, total, distance)` is called
        after every step; `cancel` (a threading.Event) stops it with `Cancelled` after the step it is set in.
        The projector's step is traced once per network and space (the first time, or in `warm_up`) and kept.
        One projection at a time."""
        from stylegan_tf.editing.projection import project
        self.need("projection")
        if space == "w":
            self.need("projection_w")
        steps = _in_range(int(_number(steps, "steps")), "steps", 1, MAX_PROJECTION_STEPS)

        def step_done(step, total, info):
            if on_step is not None:
                on_step(step, total, info["distance"])
            return cancel is None or not cancel.is_set()

        with self._projecting:
            # progress False: the page shows the progress; the server's terminal stays quiet.
            result = project(self.nets, np.asarray(target), steps=steps, space=space, frames=0, seed=seed,
                             progress=False, on_step=step_done)
        if len(result.losses) < steps:
            raise Cancelled()
        return result

    def load_photo(self, path, max_pixels):
        """A photo file -> uint8 [R, R, C] at the network's size, centre-cropped as dataset_tool does; one line
        (ExploreError) for a file that is no image, is damaged or has more than `max_pixels` pixels (read from
        its header, before anything is decoded)."""
        from stylegan_tf.data.images import SkipImage, probe
        from stylegan_tf.editing.projection import load_target
        try:
            probe(path, max_pixels)
            return load_target(path, self.resolution, int(getattr(self.Gs, "num_channels", 3)), "photo")
        except SkipImage as e:
            raise ExploreError(f"photo: {e.reason.replace('--max-pixels', 'the limit')}") from None
        except EditError as e:
            # load_target names the upload's temporary path; the user knows it as "the photo".
            raise ExploreError(str(e).replace(f"{path}: ", "")) from None


def _in_range(value, what, low, high):
    """`value` when low <= value <= high, else ExploreError naming the control and its range."""
    if not low <= value <= high:
        show = lambda x: f"{x:,}" if isinstance(x, int) else f"{x:g}"  # noqa: E731
        raise ExploreError(f"{what} must be between {show(low)} and {show(high)} (got {show(value)})")
    return value


def _number(value, what):
    """A finite float from a control's value (Gradio sends None for an emptied number box)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ExploreError(f"{what}: '{value}' is not a number") from None
    if not np.isfinite(value):
        raise ExploreError(f"{what}: '{value}' is not a finite number")
    return value
