"""Augmentations of the images D sees, for training on small datasets: ADA's pipes (adaptive discriminator
augmentation, Karras et al. 2020) and DiffAugment (Zhao et al. 2020), in keras.ops so the TensorFlow and JAX
steps share them, differentiable with respect to the images.

One entry point, `augment(images, p, seed, spec)`, takes an NHWC batch or an MSG pyramid (list of levels, lowest
first); `spec` is a registered pipe name ('bgc', ...) or a pipe object (`AdaPipe`, `DiffAugment`). The same seed
gives the same augmented batch on both backends. `check_*` validate the training options with one line each;
`adaptive` holds ADA's p heuristic.
"""
from keras import ops

from stylegan_tf.augment.ada import RANGES, TRANSFORMS, AdaPipe
from stylegan_tf.augment.adaptive import AdaptiveP, adjust_p
from stylegan_tf.augment.diffaugment import POLICIES, DiffAugment, parse_policy

MODES = ("none", "ada", "fixed", "diffaugment")
DEFAULT_PIPE = "bgc"
_PIPES = {}


def register_augment(name, **multipliers):
    """Register an ADA pipe: each transform's probability multiplier (see `ada.TRANSFORMS`).

    Example:
        >>> register_augment("flips", xflip=1)
    """
    _PIPES[name] = AdaPipe(name, {t: float(m) for t, m in multipliers.items()})
    return _PIPES[name]


_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
# ADA's pipes (its train.py augpipe_specs).
register_augment("blit", **_BLIT)
register_augment("geom", **_GEOM)
register_augment("color", **_COLOR)
register_augment("filter", imgfilter=1)
register_augment("noise", noise=1)
register_augment("cutout", cutout=1)
register_augment("bg", **_BLIT, **_GEOM)
register_augment("bgc", **_BLIT, **_GEOM, **_COLOR)
register_augment("bgcf", **_BLIT, **_GEOM, **_COLOR, imgfilter=1)
register_augment("bgcfn", **_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1)
register_augment("bgcfnc", **_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1, cutout=1)


def pipe_names():
    return tuple(_PIPES)


def get_pipe(name):
    """The registered pipe `name`; an unknown name is one line naming --augpipe and the choices."""
    if name not in _PIPES:
        raise ValueError(f"--augpipe {name!r} is unknown: choose one of {', '.join(_PIPES)}")
    return _PIPES[name]


def check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"--augment {mode!r} is unknown: choose one of {', '.join(MODES)}")
    return mode


def check_target(target):
    """ADA's target for r_t, strictly between 0 and 1."""
    if not 0 < float(target) < 1:
        raise ValueError(f"--target {target} is out of range: give a value in (0, 1) (ADA's default 0.6)")
    return float(target)


def check_p(p):
    if not 0 <= float(p) <= 1:
        raise ValueError(f"--aug-p {p} is out of range: give a probability in [0, 1]")
    return float(p)


def check_ada_kimg(kimg):
    if not float(kimg) > 0:
        raise ValueError(f"--ada-kimg {kimg} must be positive (thousands of images for p to move by 1; ADA's 500)")
    return float(kimg)


def check_ada_interval(interval):
    if int(interval) != float(interval) or int(interval) < 1:
        raise ValueError(f"--ada-interval {interval} must be a whole number of minibatches, 1 or more (ADA's 4)")
    return int(interval)


def from_options(mode="none", augpipe=DEFAULT_PIPE, diffaugment="color,translation,cutout"):
    """The spec for train.py's options: None for --augment none, a DiffAugment for diffaugment, else the pipe."""
    mode = check_mode(mode)
    if mode == "none":
        return None
    if mode == "diffaugment":
        return DiffAugment(parse_policy(diffaugment))
    return get_pipe(augpipe)


def resolve(spec):
    """A pipe object from a registered name or a pipe object."""
    return get_pipe(spec) if isinstance(spec, str) else spec


def augment(images, p, seed, spec=DEFAULT_PIPE):
    """Augment an NHWC batch or a pyramid (list of NHWC levels, lowest first): one transform drawn per sample from
    `seed` (an int or a [2] integer tensor), applied alike to every level. `p` (float or scalar tensor) is the
    strength of an ADA pipe: at 0 the images come back as they are and the pipe does no work (DiffAugment has no
    strength: it augments every image).

    Example:
        >>> out = augment(reals, p=0.2, seed=step_seed, spec="bgc")
        >>> fakes_pyramid = augment(fakes_pyramid, p=0.2, seed=step_seed, spec="bgc")
    """
    pipe = resolve(spec)
    pyramid = isinstance(images, (list, tuple))
    images = [ops.convert_to_tensor(x) for x in images] if pyramid else ops.convert_to_tensor(images)
    n, height, width, channels = (images[-1] if pyramid else images).shape

    def run():
        return pipe.apply(images, pipe.draw(n, height, width, channels, p, seed))
    if not isinstance(pipe, AdaPipe):
        return run()
    # At p = 0 every gate is shut and the pipe would only compute the identity, its resampling at full cost (as
    # much as the rest of a small network's iteration): skip it. A tensor p (the training step's aug_p) branches
    # at run time, so one traced step serves every p.
    if isinstance(p, (int, float)):
        return run() if p > 0 else images
    return ops.cond(ops.convert_to_tensor(p) > 0, run, lambda: images)


__all__ = ["AdaPipe", "AdaptiveP", "DiffAugment", "MODES", "POLICIES", "RANGES", "TRANSFORMS", "adjust_p",
           "augment", "check_ada_interval", "check_ada_kimg", "check_mode", "check_p", "check_target",
           "from_options", "get_pipe", "parse_policy", "pipe_names", "register_augment", "resolve"]
