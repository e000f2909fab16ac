"""Keras callbacks that drive the official training loop from inside `fit`.

`ProgressiveGrowing` assigns the schedule's lod before every batch, counts images and steps after it, and ends
the phase's `fit` when the phase is over (or when asked to stop: abort.txt, Ctrl-C, a time-based snapshot).
`TickMaintenance` does the once-per-tick work at each epoch end (one Keras epoch = one tick).
`ContinuousCallbacks` lets the user's callbacks see the many phase `fit`s as one training run.
"""
import time

import keras

from stylegan_tf.training.schedule import lod_at_step


class ProgressiveGrowing(keras.callbacks.Callback):
    def __init__(self, run, phase):
        super().__init__()
        self.run = run
        self.phase = phase
        self._lod = None

    def on_train_batch_begin(self, batch, logs=None):
        st = self.run.state
        lod = lod_at_step(self.run.schedule, self.phase, st.phase_step, self.run.opts.minibatch_repeats)
        if lod != self._lod:
            self.run.set_lod(lod)
            self._lod = lod

    def on_train_batch_end(self, batch, logs=None):
        run, st = self.run, self.run.state
        st.step += 1
        st.phase_step += 1
        st.nimg += self.phase.minibatch
        if logs is not None:
            elapsed = max(time.time() - st.tick_start_time, 1e-9)
            logs.update(kimg=st.nimg / 1000.0, lod=float(self._lod), resolution=float(self.phase.resolution),
                        img_per_sec=(st.nimg - st.tick_start_nimg) / elapsed)
        # The schedule, the stop conditions and the tick are looked at between groups of minibatches only.
        if st.phase_step % run.opts.minibatch_repeats and st.phase_step < self.phase.num_steps:
            return
        if st.phase_step >= self.phase.num_steps:
            run.phase_finished = True
            self.model.stop_training = True
        elif run.stop_requested() or run.snapshot_due():
            run.cut_tick = True
            self.model.stop_training = True


class TickMaintenance(keras.callbacks.Callback):
    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        self.run.end_tick(dict(logs or {}))


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
