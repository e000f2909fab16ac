"""Keras callbacks that drive the official training loop from inside `fit`.

`ProgressiveGrowing` assigns the schedule's lod before every batch, counts images and steps after it, and ends
the phase's `fit` when the phase is over (`finished`) or when asked to stop between groups (`cut`: abort.txt,
Ctrl-C, a time-based snapshot). `TickEnd` hands each epoch end (one Keras epoch = one tick) to the loop.
`ContinuousCallbacks` lets the user's callbacks see the many phase `fit`s as one training run.
They are given what they use (the loop state, the schedule, functions to call), not the loop itself.
"""
import time

import keras

from stylegan_tf.training.schedule import lod_at_step


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


class ProgressiveGrowing(keras.callbacks.Callback):
    """`state`: the loop's LoopState (nimg, step, phase_step, tick_start_*), advanced here after every batch.
    `networks`: whose `lod` variable follows the schedule. `should_stop()`: asked between groups."""

    def __init__(self, state, schedule, phase, minibatch_repeats, networks, should_stop):
        super().__init__()
        self.state = state
        self.schedule = schedule
        self.phase = phase
        self.repeats = minibatch_repeats
        self.networks = networks
        self.should_stop = should_stop
        self.lod = None
        self.finished = False      # the phase's last step is done
        self.cut = False           # stopped between groups before that

    def on_train_batch_begin(self, batch, logs=None):
        lod = lod_at_step(self.schedule, self.phase, self.state.phase_step, self.repeats)
        if lod != self.lod:
            assign_lod(self.model, self.networks, lod)
            self.lod = lod

    def on_train_batch_end(self, batch, logs=None):
        st = self.state
        st.step += 1
        st.phase_step += 1
        st.nimg += self.phase.minibatch
        if logs is not None:
            elapsed = max(time.time() - st.tick_start_time, 1e-9)
            logs.update(kimg=st.nimg / 1000.0, lod=float(self.lod), resolution=float(self.phase.resolution),
                        img_per_sec=(st.nimg - st.tick_start_nimg) / elapsed)
        # The schedule, the stop conditions and the tick are looked at between groups of minibatches only.
        if st.phase_step % self.repeats and st.phase_step < self.phase.num_steps:
            return
        if st.phase_step >= self.phase.num_steps:
            self.finished = True
            self.model.stop_training = True
        elif self.should_stop():
            self.cut = True
            self.model.stop_training = True


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
