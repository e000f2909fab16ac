"""Noise control for generate: per-layer on/off (paper Fig. 5) and reproducible random noise (Fig. 4).

Each synthesis layer owns a stored noise buffer `noise{i}` ([1, H, W, 1], non-trainable) that the
generator uses with noise_mode="const". Both features work by temporarily writing those buffers and
running with "const" noise; the buffers are restored afterwards, even on error.

- Fig. 5, as NVIDIA's script: the buffers of the layers without noise are scaled by 0.
- Random noise: the generator's own "random" mode draws from the backend's global RNG inside a cached
  compiled function, so the same command would give different pictures run to run. Instead each image gets
  fresh N(0, 1) maps drawn from a NumPy RandomState, and a batch stacks its images' maps (the generator's
  `synthesize(..., noise=maps)`). A seed therefore fixes the noise too, whatever its batch: `images
  --noise-mode random` uses the normals that follow z in RandomState(seed).
"""
import contextlib
import inspect
import re

import numpy as np

from stylegan_tf.generate.errors import GenerateError

_NOISE_NAME = re.compile(r"(?:^|[/_.])noise_?(\d+)(?:$|[/_:.])")


def _variable_name(var):
    return str(getattr(var, "path", None) or getattr(var, "name", ""))


def noise_buffers(Gs, required=True):
    """The stored per-layer noise buffers of Gs as a list of variables, ordered by layer index
    ([] for a network built without noise inputs, unless `required`)."""
    found = getattr(Gs, "noise_buffers", None)
    if found is not None:
        found = list(found() if callable(found) else found)
    else:
        owner = getattr(Gs, "synthesis", None) or Gs
        by_index = {}
        for var in getattr(owner, "non_trainable_variables", None) or getattr(owner, "variables", []):
            m = _NOISE_NAME.search(_variable_name(var))
            if m and len(var.shape) == 4 and var.shape[0] == 1 and var.shape[-1] == 1:
                by_index.setdefault(int(m.group(1)), var)
        found = [by_index[k] for k in sorted(by_index)]
    if not found and not required:
        return []
    num_layers = int(getattr(Gs, "num_layers", len(found)))
    if len(found) != num_layers:
        raise GenerateError(f"this network has {len(found)} stored noise inputs for {num_layers} layers; "
                            "the noise figures need one per layer (was it built with use_noise=False?)")
    return found


def _values(buffers):
    return [np.array(v.numpy(), copy=True) for v in buffers]


@contextlib.contextmanager
def _restoring(buffers):
    saved = _values(buffers)
    try:
        yield saved
    finally:
        for var, value in zip(buffers, saved):
            var.assign(value)


@contextlib.contextmanager
def noise_in_layers(Gs, layers):
    """Inside the block, Gs with noise_mode="const" has its stored noise only in `layers` (others get 0)."""
    buffers = noise_buffers(Gs)
    keep = set(int(i) for i in layers)
    with _restoring(buffers) as saved:
        for i, (var, value) in enumerate(zip(buffers, saved)):
            if i not in keep:
                var.assign(np.zeros_like(value))
        yield Gs


def noise_stream(seed, z_dim):
    """RandomState(seed) advanced past the seed's z: the source of that seed's random noise."""
    rng = np.random.RandomState(int(seed))
    rng.standard_normal(int(z_dim))
    return rng


def draw_noise_maps(buffers, rngs, count):
    """One noise map per layer, [count, H, W, 1] float32: image i's maps are drawn from its own stream (`rngs[i]`)
    layer after layer, or, with one shared stream, image after image in order. These are exactly the values the
    one-image-at-a-time version wrote into the buffers, so a seed's picture does not depend on its batch."""
    per_image = isinstance(rngs, (list, tuple))
    if per_image and len(rngs) != count:
        raise ValueError(f"{len(rngs)} noise streams for {count} images")
    maps = [np.empty((count,) + tuple(var.shape[1:]), np.float32) for var in buffers]
    for i in range(count):
        rng = rngs[i] if per_image else rngs
        for layer, var in enumerate(buffers):
            maps[layer][i] = rng.standard_normal(tuple(var.shape)).astype(np.float32)[0]
    return maps


def _takes_noise_maps(Gs):
    try:
        return "noise" in inspect.signature(Gs.synthesize).parameters
    except (TypeError, ValueError):
        return False


def synthesize_random_noise(Gs, w, rngs, finish, progress=None, **kwargs):
    """w [N, layers, dlatent] -> finish(images) with fresh N(0,1) noise per image drawn from `rngs`
    (one RandomState per image, or one shared stream drawn in order), in one batch. `kwargs` go to
    Gs.synthesize (precision)."""
    w = np.asarray(w, np.float32)
    buffers = noise_buffers(Gs, required=False)
    if not buffers:
        return finish(Gs.synthesize(w, noise_mode="none", **kwargs))
    maps = draw_noise_maps(buffers, rngs, len(w))
    if _takes_noise_maps(Gs):
        out = finish(Gs.synthesize(w, noise_mode="const", noise=maps, batch_size=max(len(w), 1), **kwargs))
        if progress is not None:
            progress(len(w))
        return out
    # A generator whose synthesize takes no per-image maps: its buffers hold one image's maps at a time.
    out = []
    with _restoring(buffers):
        for i in range(len(w)):
            for var, m in zip(buffers, maps):
                var.assign(m[i:i + 1])
            out.append(finish(Gs.synthesize(w[i:i + 1], noise_mode="const", **kwargs)))
            if progress is not None:
                progress(1)
    return np.concatenate(out, axis=0)


def noise_source(noise_mode, seed, z_dim):
    """The reproducible noise stream for a figure whose first seed is `seed` (None unless mode is random)."""
    return noise_stream(seed, z_dim) if noise_mode == "random" else None
