"""Nonlinearities as StyleGAN uses them: leaky ReLU 0.2 with no output gain (the sqrt(2) is in the weights)."""
import numpy as np
from keras import ops

_GAINS = {"lrelu": float(np.sqrt(2)), "relu": float(np.sqrt(2)), "linear": 1.0}


def activation_gain(name):
    """He gain that the equalized weights of a layer followed by `name` use."""
    if name not in _GAINS:
        raise ValueError(f"nonlinearity must be one of {sorted(_GAINS)}, got {name!r}")
    return _GAINS[name]


def apply_activation(x, name):
    if name == "lrelu":
        # max(x, 0.2x) as the original; leaky_relu computes the same values and has second derivatives.
        return ops.leaky_relu(x, negative_slope=0.2)
    if name == "relu":
        return ops.relu(x)
    if name == "linear":
        return x
    raise ValueError(f"nonlinearity must be one of {sorted(_GAINS)}, got {name!r}")
