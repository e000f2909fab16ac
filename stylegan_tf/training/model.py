"""`StyleGAN`: the training model. `fit` is the engine; `train_step` is one iteration of the official loop.

The iteration itself (Gs EMA update -> D step -> G step, for one static `level`, its randomness keyed by (seed,
global step)) is training/iteration.py's, run by training/tf_step.py or training/jax_step.py for the Keras backend
in use. The fade weight comes from the networks' `lod` variables, which a callback assigns before every batch.
`deterministic_step` runs the same iteration on given latents and labels.
"""
import keras
import numpy as np

import stylegan_tf.networks  # noqa: F401  (registers G and D for loading snapshots)
from stylegan_tf import augment as augment_lib
from stylegan_tf.layers.serialization import register
from stylegan_tf.training import iteration
from stylegan_tf.training import loss as loss_lib


def _step_module():
    """The backend's step: training/jax_step.py on JAX, training/tf_step.py on TensorFlow (imported on use: a
    process has one backend, and each module imports its backend's library)."""
    if keras.backend.backend() == "jax":
        from stylegan_tf.training import jax_step
        return jax_step
    from stylegan_tf.training import tf_step
    return tf_step


def _dataset_batch(x):
    """The static batch size of a tf.data dataset's elements (None when unknown)."""
    spec = getattr(x, "element_spec", None)
    while isinstance(spec, (list, tuple)) and spec:
        spec = spec[0]
    shape = getattr(spec, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) and shape[0] is not None else None


@register
class StyleGAN(keras.Model):
    """G, D and Gs (the EMA of G) trained with the official StyleGAN iteration: a Keras model for your own `fit`.

    `compile(g_optimizer, d_optimizer, loss="logistic", loss_kwargs={"gamma": 10})`, then `fit` a dataset of
    `(reals [B, r, r, C] in [-1, 1], labels [B, L], step [B] int64)`: `stylegan_tf.training.fit_dataset` makes one
    from a dataset folder. Reals larger than the current level's resolution are box-filtered down to it, so
    `stylegan_tf.callbacks.ProgressiveGrowing` grows the networks inside one `fit`. Saved and loaded as `.keras`
    (optimizers included; `keras.saving.load_model` compiles it again with its loss). `training_state` is a dict
    (kimg, tick, options, ...) stored in the config.

    Args:
        G: the generator (`stylegan_tf.networks.Generator`, or another registered architecture's).
        D: the discriminator.
        Gs: the running average of G; None: a copy of G's structure, started from G's weights at the first `fit`.
        seed: keys every random draw of a step together with the step number.
        mirror: flip each real left-right with p = 0.5 (train.py's `--mirror`).
        g_smoothing_kimg: half-life of Gs in thousands of images (10, train.py's default).
        label_pool: the dataset's labels, which the G step draws its conditioning from (conditional models).
        training_state: progress stored with the model.
        g_optimizer, d_optimizer, loss, loss_kwargs: as given to `compile`. `loss_kwargs` of the logistic loss:
            `gamma` (R1 weight) and optionally `r1_interval` K (lazy R1: the penalty every K steps with gamma * K;
            default 1, every step as the original).
        augment: `set_augment`'s keyword arguments (None: no augmentation, the original).
        freeze_d: keep the N highest-resolution blocks of D fixed (FreezeD; StyleGAN's discriminator).

    Example:
        >>> G = Generator(resolution=32, fmap_base=256, fmap_max=64, latent_size=64, dlatent_size=64)
        >>> model = StyleGAN(G, Discriminator(resolution=32, fmap_base=256, fmap_max=64), mirror=True)
        >>> adam = lambda: keras.optimizers.Adam(0.002, beta_1=0.0, beta_2=0.99, epsilon=1e-8)
        >>> model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="logistic", loss_kwargs={"gamma": 10.0})
        >>> model.fit(fit_dataset("datasets/mine", batch_size=16), epochs=10, steps_per_epoch=100,
        ...           callbacks=[stylegan_tf.callbacks.ProgressiveGrowing(), keras.callbacks.CSVLogger("log.csv")])
        >>> model.save("stylegan.keras")
    """

    def __init__(self, G, D, Gs=None, seed=1000, mirror=False, g_smoothing_kimg=10.0, label_pool=None,
                 training_state=None, g_optimizer=None, d_optimizer=None, loss="logistic", loss_kwargs=None,
                 augment=None, freeze_d=0, **kwargs):
        super().__init__(**kwargs)
        self.G = G
        self.D = D
        # A user's own `fit` starts such a Gs as a copy of G (see `_build_networks`).
        self._gs_is_clone = Gs is None
        if Gs is None:
            # A structural clone; the caller copies G's weights once both are built (ema_update_now(0)).
            Gs = G.__class__.from_config(G.get_config())
        self.Gs = Gs
        self.Gs.trainable = False
        self.seed = int(seed)
        self.mirror = bool(mirror)
        self.g_smoothing_kimg = float(g_smoothing_kimg)
        self.training_state = dict(training_state or {})
        # Labels the G step draws its conditioning from, as the original's `get_random_labels_tf`.
        self.label_pool = None if label_pool is None else np.asarray(label_pool, np.float32)
        self.level = 0
        self.global_batch = None
        self.gs_beta = 0.0
        self.r1_scale = 1.0
        self.loss_name = loss
        self.loss_entry = None   # the registry entry, set by `compile`
        self.loss_kwargs = dict(loss_kwargs or {})
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self._trackers = {}
        self.augment_settings = {"mode": "none"}
        self.augment_spec = None       # the pipe object the step applies; None: D sees the images as they are
        self.aug_p = self.ada_signs = None
        self.set_augment(**(augment or {}))
        if augment is not None:
            # A saved model that has the variables (even with augmentation off since) loads them back.
            self._augment_variables(augment.get("p", 0.0))
        self.freeze_d = 0
        self.set_freeze_d(freeze_d)
        self.built = True

    # ------------------------------------------------------------------ configuration
    def compile(self, g_optimizer=None, d_optimizer=None, loss=None, loss_kwargs=None, **kwargs):
        # An unknown loss name fails first, leaving the model as it was.
        entry = loss_lib.get_loss(self.loss_name if loss is None else loss)
        # JAX: the iteration is one jitted pure function (training/jax_step.py); TF: a tf.function, not XLA.
        kwargs.setdefault("jit_compile", keras.backend.backend() == "jax")
        # No Keras-level optimizer: G and D each own one, and `fit` must not build a third over both nets.
        kwargs["optimizer"] = None
        super().compile(**kwargs)
        if g_optimizer is not None:
            self.g_optimizer = g_optimizer
        if d_optimizer is not None:
            self.d_optimizer = d_optimizer
        if self.g_optimizer is None or self.d_optimizer is None:
            raise ValueError("StyleGAN.compile needs g_optimizer and d_optimizer")
        self.loss_name, self.loss_entry = entry.name, entry
        if loss_kwargs is not None:
            self.loss_kwargs = dict(loss_kwargs)
        self.build_optimizers()
        if keras.backend.backend() == "jax":
            self.optimizer = _step_module().OptimizerPair(self.g_optimizer, self.d_optimizer)
        self._make_trackers()

    def _make_trackers(self):
        names = iteration.tracker_names(self.loss_entry, augmenting=self.augment_spec is not None)
        self._trackers = {n: keras.metrics.Mean(name=n) if n != "nonfinite_skips" else keras.metrics.Sum(name=n)
                          for n in names}

    def set_augment(self, mode="none", augpipe=augment_lib.DEFAULT_PIPE, diffaugment="color,translation,cutout",
                    target=augment_lib.adaptive.DEFAULT_TARGET, ada_kimg=augment_lib.adaptive.DEFAULT_KIMG,
                    ada_interval=augment_lib.adaptive.DEFAULT_INTERVAL, p=0.0):
        """Augment every image D sees (docs/small_data.md): `mode` "none" (the original: the step has no
        augmentation op), "ada" (p adjusted by ADA's heuristic every `ada_interval` minibatches towards
        E[sign(D(reals))] = `target`, moving by 1 per `ada_kimg` thousand images), "fixed" (p stays) or
        "diffaugment" (the `diffaugment` policy on every image).

        p lives in the variable `aug_p` (non-trainable, saved with the model): created here with the value `p` the
        first time augmentation is set, kept as it is when it exists (a resumed snapshot's p continues).
        `ada_signs` holds the sum of the minibatches' mean sign(D(reals)) since the last adjustment.

        Example:
            >>> model.set_augment("ada", augpipe="bgc", target=0.6, ada_kimg=500, ada_interval=4)
        """
        settings = {"mode": augment_lib.check_mode(mode)}
        if mode == "diffaugment":
            settings["diffaugment"] = ",".join(augment_lib.parse_policy(diffaugment))
        elif mode != "none":
            augment_lib.get_pipe(augpipe)
            settings.update(augpipe=augpipe, target=augment_lib.check_target(target),
                            ada_kimg=augment_lib.check_ada_kimg(ada_kimg),
                            ada_interval=augment_lib.check_ada_interval(ada_interval), p=augment_lib.check_p(p))
        self.augment_settings = settings
        self.augment_spec = augment_lib.from_options(mode, augpipe, settings.get("diffaugment", diffaugment))
        if self.augment_spec is not None:
            self._augment_variables(settings.get("p", 0.0))
            if mode == "fixed":
                self.aug_p.assign(settings["p"])     # fixed: the given p, also over a resumed snapshot's
        self._retrace()

    def _augment_variables(self, p):
        """Create `aug_p` (= p) and `ada_signs` unless they exist."""
        if self.aug_p is None:
            # Every replica computes the same value (the step averages the scores' signs over the replicas first).
            self.aug_p = keras.Variable(float(p), trainable=False, name="aug_p", aggregation="mean")
            self.ada_signs = keras.Variable(0.0, trainable=False, name="ada_signs", aggregation="mean")

    def set_freeze_d(self, n):
        """FreezeD (Mo et al. 2020): the `n` highest-resolution blocks of D (and the FromRGB layers that feed
        them) get no updates; 0 trains all of D. D must have `frozen_variables(n)` (StyleGAN's discriminator)."""
        n = int(n)
        if n and not hasattr(self.D, "frozen_variables"):
            raise ValueError(f"--freeze-d {n}: {type(self.D).__name__} has no blocks to freeze (StyleGAN's "
                             "discriminator has)")
        self._frozen_d = frozenset(id(v) for v in self.D.frozen_variables(n)) if n else frozenset()
        self.freeze_d = n
        self._retrace()

    @property
    def frozen_d(self):
        """The ids of D's variables that `freeze_d` keeps fixed (empty without FreezeD)."""
        return self._frozen_d

    def _retrace(self):
        # A new trace of the step sees the new settings (and their trackers).
        if self.loss_entry is not None:
            self._make_trackers()
        if getattr(self, "train_function", None) is not None:
            self.train_function = None
            if self.global_batch is not None:
                self.make_train_function(force=True)

    def build_optimizers(self):
        for opt, net in ((self.g_optimizer, self.G), (self.d_optimizer, self.D)):
            if opt is not None and not opt.built:
                opt.build(net.trainable_variables)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def configure_phase(self, level, global_batch):
        """Set the static structure of the next trace: level, global minibatch, EMA beta, R1 scale.

        A fade and the stable phase after it share one structure (the fade weight is the `lod` variable), so
        the existing trace is kept when nothing static changes: tracing the R1 double backprop costs seconds
        to tens of seconds per phase."""
        if self.train_function is not None and (int(level), int(global_batch)) == (self.level, self.global_batch):
            return
        self.level = int(level)
        self.global_batch = int(global_batch)
        self.gs_beta = 0.5 ** (self.global_batch / (self.g_smoothing_kimg * 1000.0)) \
            if self.g_smoothing_kimg > 0 else 0.0
        self.r1_scale = 1.0 / 4 ** self.level
        # A new structure needs a new trace of train_step.
        self.train_function = None
        self.make_train_function(force=True)

    def fit(self, x=None, *args, **kwargs):
        """Keras `fit`. In a user's own `fit` (not train.py's loop, which configures every phase itself) an
        unconfigured model trains the full network with the dataset's batch as the minibatch, so that Gs is the
        EMA with `g_smoothing_kimg` half-life from the first step; `stylegan_tf.callbacks.ProgressiveGrowing`
        changes the level as the schedule says."""
        self._build_networks(x)
        # The data is a shuffled stream keyed by step; Keras must not try to shuffle it again.
        kwargs.setdefault("shuffle", False)
        if self.global_batch is None and _dataset_batch(x):
            self.configure_phase(0, _dataset_batch(x))
        return super().fit(x, *args, **kwargs)

    def _build_networks(self, x):
        """Build G, D and Gs from a dataset's element shapes if a user made them unbuilt, and start Gs as a copy
        of G (train.py's loop builds them itself): the EMA pairs G's and Gs's variables, which must exist."""
        spec = getattr(x, "element_spec", None)
        if not isinstance(spec, tuple) or not self._gs_is_clone or any(
                int(opt.iterations.numpy()) for opt in (self.g_optimizer, self.d_optimizer)
                if opt is not None and opt.built):
            return
        z = np.zeros([1, self.G.latent_size], np.float32)
        lab = np.zeros([1, self.G.label_size], np.float32) if self.G.label_size else None
        for net in (self.G, self.Gs):
            net(z, labels=lab, training=False)
        reals = spec[0]
        reals = [np.zeros([1, *r.shape[1:]], np.float32) for r in reals] if isinstance(reals, tuple) \
            else np.zeros([1, *reals.shape[1:]], np.float32)
        self.D(reals, labels=lab, training=False)
        self.__dict__.pop("_gs_pairs", None)
        self.ema_update_now(0.0)
        self._gs_is_clone = False

    def reset_optimizers(self, g_lrate=None, d_lrate=None):
        """Zero both Adam states and step counters (official `reset_optimizer_state`) and set the lrs."""
        for opt, lr in ((self.g_optimizer, g_lrate), (self.d_optimizer, d_lrate)):
            inner = getattr(opt, "inner_optimizer", opt)
            lr_var = getattr(inner, "_learning_rate", None)
            for v in inner.variables:
                if v is not lr_var:
                    v.assign(keras.ops.zeros(v.shape, v.dtype))
            if lr is not None:
                inner.learning_rate = lr

    # ------------------------------------------------------------------ the iteration
    def train_step(self, *args):
        """One official iteration on a batch `(reals, labels, step)`; draws its randomness from (seed, step).

        The iteration is training/iteration.py's; on JAX, Keras calls `train_step(state, data)` and the stateless
        step of training/jax_step.py runs it, on TensorFlow training/tf_step.py's."""
        return _step_module().train_step(self, *args)

    def r1_due(self, step):
        """Whether global step `step` takes the R1 penalty (always, unless `loss_kwargs["r1_interval"]` K > 1:
        then the steps with step % K == 0, StyleGAN2's lazy regularisation)."""
        return iteration.r1_due(self, step)

    def deterministic_step(self, reals, labels, z_d, z_g, labels_g=None, step=0, noise_mode="const"):
        """Run one training iteration on given numbers: the official iteration without its randomness.

        The same Gs update, D step and G step as `train_step` (the same code, `iteration.iteration`), with the
        latents and G-step labels given instead of drawn, no mirror augment, and the generator's noise `noise_mode`
        ("const": the stored noise buffers, the original's `randomize_noise=False`). Style mixing is the
        generator's own setting: build G with `style_mixing_prob=None` for an iteration without it (the
        original's `style_mixing_prob=None`); with mixing, its draws are keyed by `step` and so still repeatable.
        Uses the phase set by `configure_phase` (level, global minibatch, Gs beta, R1 scale) and the fade weight
        in `G.lod`/`D.lod`; updates G, D, Gs and both optimizers exactly as a `fit` step would. Single device:
        the batch is the whole minibatch.

        Args:
            reals: [N, r, r, C] images in [-1, 1] at the level's native resolution r (NHWC).
            labels: [N, label_size] labels of the reals (used by the D step), or None if unconditional.
            z_d: [N, latent_size] latents of the D step's fakes.
            z_g: [N, latent_size] latents of the G step's fakes.
            labels_g: [N, label_size] labels of the G step's fakes, or None if unconditional.
            step: the global step keying the draws that remain (noise if `noise_mode="random"`, mixing, the
                WGAN-GP interpolation factors).
            noise_mode: "const", "random" or "none".

        Returns:
            A dict of numpy arrays: `D_loss`, `G_loss` (the minibatch means the optimizers minimised),
            `D_loss_per_sample`, `G_loss_per_sample`, `real_score`, `fake_score`, the penalty (`r1`, `gp` or
            `div`), `nonfinite_skips`, and the gradients `D_grads`/`G_grads` as lists aligned with
            `D.trainable_variables`/`G.trainable_variables`.

        Example:
            >>> G = Generator(resolution=8, num_channels=3, latent_size=16, dlatent_size=16, fmap_max=16,
            ...               style_mixing_prob=None)
            >>> model = StyleGAN(G, Discriminator(resolution=8, num_channels=3, fmap_max=16))
            >>> model.ema_update_now(0.0)   # Gs starts as a copy of G
            >>> adam = lambda: keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99, epsilon=1e-8)
            >>> model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="logistic", loss_kwargs={"gamma": 10})
            >>> model.configure_phase(level=0, global_batch=4)
            >>> rng = np.random.default_rng(0)
            >>> out = model.deterministic_step(rng.uniform(-1, 1, (4, 8, 8, 3)), None,
            ...                                rng.normal(size=(4, 16)), rng.normal(size=(4, 16)))
            >>> out["D_loss"].shape, len(out["G_grads"]) == len(G.trainable_variables)
            ((), True)
        """
        if self.loss_entry is None:
            raise ValueError("StyleGAN.deterministic_step needs compile() first")
        if self.global_batch is None:
            raise ValueError("StyleGAN.deterministic_step needs configure_phase(level, global_batch) first")
        if self.G.label_size > 0 and (labels is None or labels_g is None):
            raise ValueError("a conditional model needs labels and labels_g")
        if self.G.label_size == 0:
            labels = labels_g = None
        return _step_module().deterministic_step(self, reals, labels, z_d, z_g, labels_g, step, noise_mode)

    def gs_pairs(self):
        """(Gs variable, G variable, trainable) in matching order; checked once."""
        pairs = self.__dict__.get("_gs_pairs")
        if pairs is None:
            gw, sw = self.G.weights, self.Gs.weights
            if len(gw) != len(sw) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(gw, sw)):
                raise ValueError("Gs does not have the same structure as G")
            pairs = [(s, g, bool(g.trainable)) for s, g in zip(sw, gw)]
            # Kept out of Keras attribute tracking: these variables belong to G and Gs, not to this model.
            self.__dict__["_gs_pairs"] = pairs
        return pairs

    def ema_update_now(self, beta):
        """Gs = lerp(G, Gs, beta) outside fit (for tests and for copying G into Gs with beta 0)."""
        for s, g, tr in self.gs_pairs():
            s.assign(g.value + (s.value - g.value) * beta if tr else g.value)

    # ------------------------------------------------------------------ saving
    def get_config(self):
        config = {
            "G": keras.saving.serialize_keras_object(self.G),
            "D": keras.saving.serialize_keras_object(self.D),
            "Gs": keras.saving.serialize_keras_object(self.Gs),
            "seed": self.seed, "mirror": self.mirror, "g_smoothing_kimg": self.g_smoothing_kimg,
            "training_state": self.training_state, "loss": self.loss_name, "loss_kwargs": self.loss_kwargs,
            "name": self.name,
        }
        # Only a run that uses them stores them: the config of a run without stays as it was.
        if self.aug_p is not None:
            config["augment"] = dict(self.augment_settings)
        if self.freeze_d:
            config["freeze_d"] = self.freeze_d
        for key in ("g_optimizer", "d_optimizer"):
            opt = getattr(self, key)
            config[key] = None if opt is None else keras.saving.serialize_keras_object(opt)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("G", "D", "Gs", "g_optimizer", "d_optimizer"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects=custom_objects)
        model = cls(**config)
        # Optimizer slots must exist before the saved weights are loaded into them.
        model.build_optimizers()
        return model

    def get_compile_config(self):
        """What `keras.saving.load_model` compiles a loaded model with (`compile_from_config`), so that it is ready
        to `fit` again: the loss and its options (a loss you registered yourself must be registered before loading).
        The optimizers are in `get_config`; `jit_compile` is left to the backend that loads the model, as `compile`
        chooses it."""
        return {"loss": self.loss_name, "loss_kwargs": dict(self.loss_kwargs)} if self.compiled else {}

    def compile_from_config(self, config):
        self.compile(**config)

    def get_build_config(self):
        return {}

    def build_from_config(self, config):
        self.build_optimizers()
