"""`StyleGAN`: the training model. `fit` is the engine; `train_step` is one iteration of the official loop.

One `train_step` = Gs EMA update -> D step (counts the minibatch) -> G step, for one static `level` (the
structure traced for this phase): the original's `run([D_train_op, Gs_update_op])` then `run([G_train_op])`,
with Gs averaging G as it was before the iteration's G step. The fade weight comes from the networks' `lod`
variables, which a callback assigns before every batch. All randomness is stateless and keyed by (seed, global
step), the step arriving with the batch, so a run resumed from a snapshot draws exactly the numbers the
uninterrupted run would. `deterministic_step` runs the same iteration on given latents and labels.
"""
import keras
import numpy as np

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

import stylegan_tf.networks  # noqa: F401  (registers G and D for loading snapshots)
from stylegan_tf.networks import draws
from stylegan_tf.training import loss as loss_lib

_SALT_Z_D, _SALT_Z_G, _SALT_MIRROR, _SALT_PENALTY, _SALT_LABELS, _SALT_G_DRAWS_D, _SALT_G_DRAWS_G = 1, 2, 3, 4, 5, 6, 7


def _replica():
    """(replica id, number of replicas) of the current replica context (0, 1 outside distribution)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return 0, 1
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def _distributed():
    return tf.distribute.has_strategy() and tf.distribute.get_replica_context() is not None \
        and tf.distribute.get_strategy().num_replicas_in_sync > 1


def _tf_var(v):
    # The TF variable (a MirroredVariable under a strategy) behind a Keras variable.
    return getattr(v, "value", v) if isinstance(v, keras.Variable) else v


def apply_if_finite(optimizer, grads, variables):
    """Apply `grads` unless any is NaN/Inf anywhere (all replicas agree); returns 1.0 if skipped else 0.0.

    A skipped update leaves weights, Adam moments and the step counter untouched, as the original does.
    Under MirroredStrategy the decision must be taken in cross-replica context, because a `cond` inside a
    replica cannot contain the optimizer's cross-replica `merge_call`.
    """
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    grads = [g for g, _ in pairs]
    variables = [v for _, v in pairs]
    bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(tf.cast(g, tf.float32)), tf.float32))
                    for g in grads]) if grads else tf.constant(0.0)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        # It already skips non-finite steps (and adjusts its scale).
        optimizer.apply(grads, variables)
        return tf.cast(bad > 0, tf.float32)
    if not _distributed():
        finite = tf.equal(bad, 0.0)
        tf.cond(finite, lambda: _apply(optimizer, grads, variables), lambda: tf.no_op())
        return 1.0 - tf.cast(finite, tf.float32)

    ctx = tf.distribute.get_replica_context()
    total_bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, bad)

    def cross_replica(strategy, grads, total_bad):
        finite = tf.equal(strategy.experimental_local_results(total_bad)[0], 0.0)

        def do_apply():
            strategy.extended.call_for_each_replica(
                lambda g: optimizer.apply(g, variables), args=(grads,))
            return tf.constant(True)

        return tf.cond(finite, do_apply, lambda: tf.constant(False))

    ctx.merge_call(cross_replica, args=(grads, total_bad))
    return tf.cast(total_bad > 0, tf.float32)


def _apply(optimizer, grads, variables):
    optimizer.apply(grads, variables)
    return tf.no_op()


def fade_reals(x, alpha):
    """The original's FadeLOD on native reals: lerp(x, nearest_up(box_down2(x)), alpha)."""
    if x.shape[1] is not None and x.shape[1] < 2:
        return x
    s = tf.shape(x)
    y = tf.reshape(x, [s[0], s[1] // 2, 2, s[2] // 2, 2, s[3]])
    y = tf.reduce_mean(y, axis=[2, 4], keepdims=True)
    y = tf.tile(y, [1, 1, 2, 1, 2, 1])
    y = tf.reshape(y, s)
    return x + (y - x) * tf.cast(alpha, x.dtype)


def downscale_reals(x, resolution):
    """Box-filter reals larger than `resolution` down to it (the mean of each block, as dataset_tool makes its
    lower levels): a user's full-resolution dataset then trains every level of a progressive run in one `fit`."""
    size = x.shape[1]
    if size is None or size <= resolution:
        return x
    factor = size // resolution
    # keras.ops: TF's avg_pool on TensorFlow, and the JAX step (training/jax_step.py) calls this same function.
    return keras.ops.average_pool(x, factor, factor, "valid")


def _dataset_batch(x):
    """The static batch size of a tf.data dataset's elements (None when unknown)."""
    spec = getattr(x, "element_spec", None)
    while isinstance(spec, (list, tuple)) and spec:
        spec = spec[0]
    shape = getattr(spec, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) and shape[0] is not None else None


def _batch_size(reals):
    """The batch size of reals (a tensor, or a list of per-level tensors), static where it is known."""
    x = reals[0] if isinstance(reals, (list, tuple)) else reals
    return x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]


@keras.saving.register_keras_serializable(package="stylegan_tf")
class StyleGAN(keras.Model):
    """G, D and Gs (the EMA of G) trained with the official StyleGAN iteration: a Keras model for your own `fit`.

    `compile(g_optimizer, d_optimizer, loss="logistic", loss_kwargs={"gamma": 10})`, then `fit` a dataset of
    `(reals [B, r, r, C] in [-1, 1], labels [B, L], step [B] int64)`: `stylegan_tf.training.fit_dataset` makes one
    from a dataset folder. Reals larger than the current level's resolution are box-filtered down to it, so
    `stylegan_tf.callbacks.ProgressiveGrowing` grows the networks inside one `fit`. Saved and loaded as `.keras`
    (optimizers included). `training_state` is a dict (kimg, tick, options, ...) stored in the config.

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
                 **kwargs):
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
        self.loss_kwargs = dict(loss_kwargs or {})
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self._trackers = {}
        self.built = True

    # ------------------------------------------------------------------ configuration
    def compile(self, g_optimizer=None, d_optimizer=None, loss=None, loss_kwargs=None, **kwargs):
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
        if loss is not None:
            self.loss_name = loss
        if loss_kwargs is not None:
            self.loss_kwargs = dict(loss_kwargs)
        self.g_loss_fn, self.d_loss_fn = loss_lib.get_loss(self.loss_name)
        self.build_optimizers()
        if keras.backend.backend() == "jax":
            from stylegan_tf.training import jax_step
            self.optimizer = jax_step.OptimizerPair(self.g_optimizer, self.d_optimizer)
        names = ["G_loss", "D_loss", "real_score", "fake_score", "nonfinite_skips"]
        names += {"logistic": ["r1"], "wgan-gp": ["gp"], "wgan-div": ["div"]}.get(self.loss_name, [])
        self._trackers = {n: keras.metrics.Mean(name=n) if n != "nonfinite_skips" else keras.metrics.Sum(name=n)
                          for n in names}

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
    def _key(self, step, salt):
        return tf.stack([tf.constant(self.seed * 64 + salt, tf.int64), tf.cast(step, tf.int64)])

    def _global_draw(self, fn, local_n, seed):
        """Draw for the global batch, keep this replica's slice: 1 or N replicas see the same numbers."""
        rid, n_rep = _replica()
        full = fn(local_n * n_rep, seed)
        start = tf.cast(rid, tf.int32) * local_n if not isinstance(rid, int) else rid * local_n
        return full[start:start + local_n]

    def _latents(self, n, seed):
        return self._global_draw(
            lambda m, s: tf.random.stateless_normal([m, self.G.latent_size], seed=s), n, seed)

    def _call_G(self, z, labels, key, noise_mode=None):
        # Noise and style mixing differ between replicas, as with the original's per-GPU random ops.
        rid, _ = _replica()
        return self.G(z, labels=labels, training=True, level=self.level, noise_mode=noise_mode,
                      seed=draws.child(key, tf.cast(rid, tf.int64)))

    def _call_D(self, x, labels):
        return self.D(x, labels=labels, training=True, level=self.level)

    def train_step(self, *args):
        """One official iteration on a batch `(reals, labels, step)`; draws its randomness from (seed, step).

        The latents, mirror flips and G-step labels are drawn here; the iteration itself is `_iteration`, which
        `deterministic_step` runs on given numbers instead. On JAX, Keras calls `train_step(state, data)` and
        the stateless step of training/jax_step.py runs the same iteration."""
        if keras.backend.backend() == "jax":
            from stylegan_tf.training import jax_step
            return jax_step.train_step(self, *args)
        reals, labels, step = args[0]
        step = step[0]
        # A pyramid architecture (MSG) gets its reals as a tuple of every level, lowest first.
        reals = list(reals) if isinstance(reals, (list, tuple)) else reals
        n = _batch_size(reals)
        has_labels = self.G.label_size > 0
        labels = tf.cast(labels, tf.float32) if has_labels else None
        reals = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), reals)
        if not isinstance(reals, list):
            reals = downscale_reals(reals, self.G.resolution // 2 ** self.level)
        if self.mirror:
            flip = self._global_draw(lambda m, s: tf.random.stateless_uniform([m], seed=s), n,
                                     self._key(step, _SALT_MIRROR)) < 0.5
            # One flip per sample, applied to every level of it.
            reals = tf.nest.map_structure(
                lambda x: tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x), reals)
        out = self._iteration(reals, labels, self._latents(n, self._key(step, _SALT_Z_D)),
                              self._latents(n, self._key(step, _SALT_Z_G)),
                              self._random_labels(n, step) if has_labels else None, step, noise_mode=None)

        # Per-replica means; Keras averages them over replicas.
        local = {"G_loss": tf.reduce_mean(out["G_loss_per_sample"]),
                 "D_loss": tf.reduce_mean(out["D_loss_per_sample"]),
                 "real_score": tf.reduce_mean(out["real_score"]), "fake_score": tf.reduce_mean(out["fake_score"])}
        for extra in ("r1", "gp", "div"):
            if extra in out and extra in self._trackers:
                local[extra] = tf.reduce_mean(out[extra])
        lazy_r1 = loss_lib.r1_interval(self.loss_kwargs) > 1
        for k, v in local.items():
            if k == "r1" and lazy_r1:
                # The mean over the steps that took the penalty (the others report no R1).
                self._trackers[k].update_state(v, sample_weight=tf.cast(self.r1_due(step), tf.float32))
            else:
                self._trackers[k].update_state(v)
        self._trackers["nonfinite_skips"].update_state(out["nonfinite_skips"])
        return {k: t.result() for k, t in self._trackers.items()}

    def _iteration(self, reals, labels, z_d, z_g, labels_g, step, noise_mode=None):
        """The iteration proper, shared by `train_step` and `deterministic_step`: Gs update, D step, G step.

        `reals` float32 at the level's native resolution (already mirrored), `labels`/`labels_g` None for an
        unconditional model, `step` keys the generator's own draws (noise maps, style mixing) and the penalty's,
        `noise_mode` None = the training default (random noise). Returns per-sample losses, the loss's stats,
        `nonfinite_skips` and both gradient lists (aligned with `D/G.trainable_variables`; unscaled)."""
        n = _batch_size(reals)
        global_n = float(self.global_batch or n)
        if getattr(self.G, "lod", None) is not None and not isinstance(reals, (list, tuple)):
            # Only a progressively grown network fades; architectures without `lod` (DCGAN, MSG) never do.
            lod = tf.cast(tf.convert_to_tensor(_tf_var(self.G.lod)), tf.float32)
            reals = fade_reals(reals, tf.clip_by_value(lod - float(self.level), 0.0, 1.0))

        # ---- Gs = lerp(G, Gs, beta); non-trainables (lod, dlatent_avg, noise buffers) copied.
        # The original runs the Gs update in the same session.run as the D step, so it averages G as it was
        # before this iteration's G step. The two ops do not depend on each other; in the official run (see
        # tests/fixtures/README.md, official-r16-cond-train-step.npz) Gs copies dlatent_avg as it was *before*
        # the D step's G call updated it (`pre/G/dlatent_avg`, not `mid/`). Updating Gs first reproduces both:
        # G's trainables are the same before and after the D step, and dlatent_avg is the pre-D-step value.
        self._update_gs()

        # ---- D step (fakes use style mixing and update dlatent_avg inside G's training call)
        fakes = tf.nest.map_structure(
            tf.stop_gradient, self._call_G(z_d, labels, self._key(step, _SALT_G_DRAWS_D), noise_mode))
        if isinstance(fakes, (list, tuple)):
            fakes = [tf.cast(f, r.dtype) for f, r in zip(fakes, reals)]
        else:
            fakes = tf.cast(fakes, reals.dtype)
        d_vars = self.D.trainable_variables
        d_scale = self._loss_scale(self.d_optimizer)

        def d_loss_and_grads(loss_kwargs):
            with tf.GradientTape() as tape:
                per_sample, stats = self.d_loss_fn(
                    lambda x: self._call_D(x, labels), reals, fakes,
                    r1_scale=self.r1_scale, grad_scale=d_scale, seed=self._key(step, _SALT_PENALTY),
                    **loss_kwargs)
                d_loss = tf.reduce_sum(per_sample) / global_n
                scaled = self.d_optimizer.scale_loss(d_loss) if d_scale != 1.0 else d_loss
            return per_sample, stats, tape.gradient(scaled, d_vars)

        if loss_lib.r1_interval(self.loss_kwargs) > 1:
            per_sample, stats, d_grads = self._lazy_r1(d_loss_and_grads, step)
        else:
            per_sample, stats, d_grads = d_loss_and_grads(self.loss_kwargs)
        d_skip = apply_if_finite(self.d_optimizer, d_grads, d_vars)

        # ---- G step (updates dlatent_avg again, as the original's G loss graph does)
        g_vars = self.G.trainable_variables
        g_scale = self._loss_scale(self.g_optimizer)
        with tf.GradientTape() as tape:
            g_fakes = self._call_G(z_g, labels_g, self._key(step, _SALT_G_DRAWS_G), noise_mode)
            fake_scores = self._call_D(g_fakes, labels_g)
            if loss_lib.g_loss_needs_reals(self.g_loss_fn):
                # A relativistic G loss compares with D's scores of this iteration's reals.
                g_per_sample = self.g_loss_fn(fake_scores, self._call_D(reals, labels))
            else:
                g_per_sample = self.g_loss_fn(fake_scores)
            g_loss = tf.reduce_sum(g_per_sample) / global_n
            scaled = self.g_optimizer.scale_loss(g_loss) if g_scale != 1.0 else g_loss
        g_grads = tape.gradient(scaled, g_vars)
        g_skip = apply_if_finite(self.g_optimizer, g_grads, g_vars)

        out = dict(stats)
        out.update(D_loss_per_sample=per_sample, G_loss_per_sample=g_per_sample, nonfinite_skips=d_skip + g_skip,
                   D_grads=self._unscale(d_grads, d_scale), G_grads=self._unscale(g_grads, g_scale))
        return out

    def r1_due(self, step):
        """Whether global step `step` takes the R1 penalty (always, unless `loss_kwargs["r1_interval"]` K > 1:
        then the steps with step % K == 0, StyleGAN2's lazy regularisation)."""
        k = loss_lib.r1_interval(self.loss_kwargs)
        return tf.equal(tf.math.floormod(tf.cast(step, tf.int64), k), 0)

    def _lazy_r1(self, d_loss_and_grads, step):
        """The D loss and gradients of a lazy-R1 step: the penalty (gamma * K) on the due steps only.

        Only the branch taken is computed, so the other K - 1 steps skip the double backprop. The cond covers
        the loss and its gradients only (not the optimizer, whose update may need a cross-replica merge)."""
        none = {}

        def branch(with_r1):
            def run():
                per_sample, stats, grads = d_loss_and_grads(loss_lib.lazy_r1_kwargs(self.loss_kwargs, with_r1))
                # A variable outside this level's graph has no gradient (None): the same in both branches,
                # rebuilt after the cond (a zero gradient would still move Adam's moments).
                none[with_r1] = [g is None for g in grads]
                return per_sample, stats, [g for g in grads if g is not None]
            return run

        per_sample, stats, grads = tf.cond(self.r1_due(step), branch(True), branch(False))
        if none[True] != none[False]:
            raise ValueError("the lazy R1 step and the plain D step reach different D variables")
        it = iter(grads)
        return per_sample, stats, [None if n else next(it) for n in none[True]]

    def deterministic_step(self, reals, labels, z_d, z_g, labels_g=None, step=0, noise_mode="const"):
        """Run one training iteration on given numbers: the official iteration without its randomness.

        The same Gs update, D step and G step as `train_step` (the same code, `_iteration`), with the latents and
        G-step labels given instead of drawn, no mirror augment, and the generator's noise `noise_mode`
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
        if getattr(self, "g_loss_fn", None) is None:
            raise ValueError("StyleGAN.deterministic_step needs compile() first")
        if self.global_batch is None:
            raise ValueError("StyleGAN.deterministic_step needs configure_phase(level, global_batch) first")
        has_labels = self.G.label_size > 0
        if has_labels and (labels is None or labels_g is None):
            raise ValueError("a conditional model needs labels and labels_g")
        if keras.backend.backend() == "jax":
            from stylegan_tf.training import jax_step
            return jax_step.deterministic_step(self, reals, labels, z_d, z_g, labels_g, step, noise_mode)

        z_d, z_g = (tf.convert_to_tensor(x, tf.float32) for x in (z_d, z_g))
        # A pyramid architecture (MSG) takes a list of levels, lowest first.
        reals = [tf.convert_to_tensor(x, tf.float32) for x in reals] if isinstance(reals, (list, tuple)) \
            else tf.convert_to_tensor(reals, tf.float32)
        labels, labels_g = (tf.convert_to_tensor(x, tf.float32) if has_labels else None for x in (labels, labels_g))
        # One trace per phase structure (level, batch, beta and R1 scale are read while tracing), as fit's.
        phase = (self.level, self.global_batch, self.gs_beta, self.r1_scale, noise_mode)
        cached = self.__dict__.get("_deterministic_fn")   # kept out of Keras' attribute tracking
        if cached is None or cached[0] != phase:
            fn = tf.function(lambda *a: self._iteration(*a, noise_mode=noise_mode))
            self.__dict__["_deterministic_fn"] = cached = (phase, fn)
        out = cached[1](reals, labels, z_d, z_g, labels_g, tf.constant(int(step), tf.int64))
        # A variable outside this level's graph (a lower level's ToRGB/FromRGB) has no gradient: reported as
        # zeros, which is what the original's full-size graph computes for it (its fade weight is 0).
        grads = {key: [np.zeros(v.shape, np.float32) if g is None else g.numpy()
                       for g, v in zip(out.pop(key), net.trainable_variables)]
                 for key, net in (("D_grads", self.D), ("G_grads", self.G))}
        out = {k: v.numpy() for k, v in out.items()}
        out.update(grads)
        out["D_loss"] = out["D_loss_per_sample"].sum() / self.global_batch
        out["G_loss"] = out["G_loss_per_sample"].sum() / self.global_batch
        return out

    @staticmethod
    def _unscale(grads, scale):
        # The gradients of a loss-scaled (mixed precision) step, in the units of the loss itself. The optimizer
        # is given the scaled ones (LossScaleOptimizer unscales them itself); these are only reported.
        return grads if isinstance(scale, float) and scale == 1.0 else [
            None if g is None else tf.cast(g, tf.float32) / scale for g in grads]

    def _loss_scale(self, optimizer):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return tf.cast(_tf_var(optimizer.dynamic_scale), tf.float32)
        return 1.0

    def _random_labels(self, n, step):
        pool = self.label_pool
        if pool is None or len(pool) == 0:
            raise ValueError("a conditional model needs label_pool (the dataset's labels) for the G step")
        idx = self._global_draw(
            lambda m, s: tf.random.stateless_uniform([m], seed=s, minval=0, maxval=len(pool), dtype=tf.int64),
            n, self._key(step, _SALT_LABELS))
        return tf.gather(tf.constant(pool), idx)

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

    def _update_gs(self):
        beta = float(self.gs_beta)
        pairs = self.gs_pairs()

        def new_value(gs_v, g_v, trainable):
            return g_v + (gs_v - g_v) * beta if trainable else g_v

        if not _distributed():
            for s, g, tr in pairs:
                s.assign(new_value(s.value, g.value, tr))
            return

        def cross_replica(strategy):
            for s, g, tr in pairs:
                strategy.extended.update(
                    _tf_var(s), lambda sv, gv, tr=tr: sv.assign(new_value(sv, gv, tr)), args=(_tf_var(g),))

        tf.distribute.get_replica_context().merge_call(cross_replica)

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

    def get_build_config(self):
        return {}

    def build_from_config(self, config):
        self.build_optimizers()
