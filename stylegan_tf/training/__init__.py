"""Training: the official StyleGAN schedule, losses and loop, with Keras `fit` as the engine.

Importing this package registers the `StyleGAN` training model, so `keras.saving.load_model` (and
`stylegan_tf.load_network`) can open training snapshots.
"""
from stylegan_tf.training.api import add_steps, fit_dataset, resolve_options, train
from stylegan_tf.training.loss import LOSSES, get_loss, loss_names, register_loss
from stylegan_tf.training.model import StyleGAN
from stylegan_tf.training.options import OptionsError, TrainingOptions
from stylegan_tf.training.schedule import TrainingSchedule, preset
from stylegan_tf.training.training_loop import TrainingResult, training_loop

__all__ = ["LOSSES", "OptionsError", "StyleGAN", "TrainingOptions", "TrainingResult", "TrainingSchedule",
           "add_steps", "fit_dataset", "get_loss", "loss_names", "preset", "register_loss", "resolve_options", "train",
           "training_loop"]
