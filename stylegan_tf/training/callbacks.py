"""Keras callbacks that drive the official training loop from inside `fit`.

`ScheduleDriver` is the one place that applies a `TrainingSchedule` to a model: a new phase's Adam reset,
learning rates and traced structure, and the lod before each group of minibatches. The loop's
`ProgressiveGrowing` (below) and the public `stylegan_tf.callbacks.ProgressiveGrowing` (a user's own `fit`)
both follow the schedule through it.

`ProgressiveGrowing` follows the schedule before every group, counts images and steps after each batch, and ends
the phase's `fit` when the phase is over (`finished`) or when asked to stop between groups (`cut`: abort.txt,
Ctrl-C, a time-based snapshot). `TickEnd` hands each epoch end (one Keras epoch = one tick) to the loop.
`ProgressLine` is fit's progress bar with the numbers a user reads. `ContinuousCallbacks` lets the user's
callbacks see the many phase `fit`s as one training run. They are given what they use (the loop state, the
schedule, functions to call), not the loop itself.
"""
import math
import time

import keras


def sync_variables(model):
    """Under JAX, `fit` holds the variables' values in its own state between steps: write them back, so that what
    reads or assigns a variable between steps sees (and is not overwritten by) that state (Keras' JAX trainer's
    `jax_state_sync`). No-op on TensorFlow."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def assign_lod(model, networks, lod):
    """Set the fade of every network in `networks` (those with a `lod` variable) between steps of `model`."""
    sync_variables(model)
    for net in networks:
        net.lod.assign(float(lod))


class ScheduleDriver:
    """Applies a `TrainingSchedule` to a model between groups of minibatches: `follow(model, nimg)` enters a new
    phase (a new (floor, ceil) of lod) when the schedule reaches one, and assigns the schedule's lod.

    Args:
        schedule: the `TrainingSchedule`.
        networks: the networks whose `lod` variable follows the schedule (StyleGAN's G and D).
        minibatch: the global minibatch of the traced structure; None: the schedule's at each phase.
        reset_optimizers: zero both Adam states when a later phase starts (the official `reset_opt_for_new_lod`).

    Example:
        >>> driver = ScheduleDriver(schedule, [model.G, model.D])
        >>> driver.follow(model, nimg=0).lod       # before the first group: phase entered, lod assigned
        3.0
    """

    def __init__(self, schedule, networks, minibatch=None, reset_optimizers=True):
        self.schedule = schedule
        self.networks = tuple(networks)
        self.minibatch = minibatch
        self.reset_optimizers = reset_optimizers
        self.state = None          # the ScheduleState last applied

    def enter(self, model, s, reset):
        """Start the phase of ScheduleState `s`: fresh Adam states if `reset`, its learning rates, the static
        structure of its level (the next step is traced anew when that changes) and its lod."""
        sync_variables(model)
        if reset:
            model.reset_optimizers()
        for opt, lr in ((model.g_optimizer, s.G_lrate), (model.d_optimizer, s.D_lrate)):
            getattr(opt, "inner_optimizer", opt).learning_rate = lr
        model.configure_phase(s.level, self.minibatch or s.minibatch)
        assign_lod(model, self.networks, s.lod)
        self.state = s

    def follow(self, model, nimg):
        """Apply the schedule at `nimg` images shown (call before a group's first minibatch); returns its state."""
        s = self.schedule.at(nimg / 1000.0)
        if self.state is None or s.phase_key != self.state.phase_key:
            self.enter(model, s, reset=self.state is not None and self.reset_optimizers)
        elif s.lod != self.state.lod:
            assign_lod(model, self.networks, s.lod)
            self.state = s
        return s


class ProgressiveGrowing(keras.callbacks.Callback):
    """`state`: the loop's LoopState (nimg, step, phase_step, tick_start_*), advanced here after every batch.
    `driver`: the phase's `ScheduleDriver` (the loop has entered the phase). `should_stop()`: asked between
    groups."""

    def __init__(self, state, driver, phase, minibatch_repeats, should_stop):
        super().__init__()
        self.state = state
        self.driver = driver
        self.phase = phase
        self.repeats = minibatch_repeats
        self.should_stop = should_stop
        self.finished = False      # the phase's last step is done
        self.cut = False           # stopped between groups before that

    @property
    def lod(self):
        return self.driver.state.lod

    def on_train_batch_begin(self, batch, logs=None):
        # The lod changes between groups of minibatches only, as the official loop reads the schedule.
        if self.state.phase_step % self.repeats == 0:
            self.driver.follow(self.model, self.state.nimg)

    def on_train_batch_end(self, batch, logs=None):
        st = self.state
        st.step += 1
        st.phase_step += 1
        st.nimg += self.phase.minibatch
        self._log_progress(logs)
        # The schedule, the stop conditions and the tick are looked at between groups of minibatches only.
        if st.phase_step % self.repeats and st.phase_step < self.phase.num_steps:
            return
        if st.phase_step >= self.phase.num_steps:
            self.finished = True
            self.model.stop_training = True
        elif self.should_stop():
            self.cut = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self._log_progress(logs)

    def _log_progress(self, logs):
        if logs is not None:
            st = self.state
            elapsed = max(time.time() - st.tick_start_time, 1e-9)
            logs.update(kimg=st.nimg / 1000.0, lod=float(self.lod), resolution=float(self.phase.resolution),
                        img_per_sec=(st.nimg - st.tick_start_nimg) / elapsed)


def progress_logs(logs):
    """What the progress bar shows of a step's `logs`: kimg, lod while a resolution fades in, the losses and
    img/s. The rest (loss terms, non-finite skips, resolution, ...) goes to stats.jsonl and TensorBoard only.

    Example:
        >>> progress_logs({"kimg": 1.2, "lod": 0.0, "resolution": 32.0, "G_loss": 0.7, "nonfinite_skips": 0.0})
        {'kimg': 1.2, 'G_loss': 0.7}
    """
    logs = logs or {}
    shown = {"kimg": logs["kimg"]} if "kimg" in logs else {}
    lod = logs.get("lod")
    if lod is not None and lod != math.floor(lod):
        shown["lod"] = lod
    shown.update((k, v) for k, v in logs.items() if k.endswith("_loss"))
    if "img_per_sec" in logs:
        shown["img_per_sec"] = logs["img_per_sec"]
    return shown


class ProgressLine(keras.callbacks.ProgbarLogger):
    """fit's progress bar (verbose 1) with `progress_logs` of each step: the logs themselves are untouched for
    the other callbacks."""

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, progress_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, progress_logs(logs))


class TickEnd(keras.callbacks.Callback):
    def __init__(self, end_tick):
        super().__init__()
        self.end_tick = end_tick

    def on_epoch_end(self, epoch, logs=None):
        self.end_tick(dict(logs or {}))


class ContinuousCallbacks(keras.callbacks.Callback):
    """Forwards every hook to the user's callbacks, except that `on_train_begin` is sent before the first phase
    only and `on_train_end` after the last: CSVLogger, EarlyStopping, TensorBoard see one run."""

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = list(callbacks or [])
        self._began = False

    def set_model(self, model):
        super().set_model(model)
        for c in self.callbacks:
            c.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for c in self.callbacks:
            c.set_params(params)

    def on_train_begin(self, logs=None):
        if not self._began:
            self._began = True
            for c in self.callbacks:
                c.on_train_begin(logs)

    def finish(self, logs=None):
        if self._began:
            for c in self.callbacks:
                c.on_train_end(logs)
            self._began = False

    def on_train_end(self, logs=None):
        pass


def _forward(name):
    def hook(self, *args, **kwargs):
        for c in self.callbacks:
            getattr(c, name)(*args, **kwargs)
    hook.__name__ = name
    return hook


for _name in ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
              "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end"):
    setattr(ContinuousCallbacks, _name, _forward(_name))
