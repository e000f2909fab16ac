"""Command-line value parsing (seed lists, ranges, grids, layer sets) and the seed -> z definition.

A seed means the same latent as in NVIDIA's tools: z = np.random.RandomState(seed).randn(z_dim),
so seed 5 here is seed 5 in `pretrained_example.py` / `generate_figures.py`.
"""
import re

import numpy as np

from stylegan_tf.generate.errors import GenerateError

MAX_SEED = 2**32 - 1  # np.random.RandomState accepts seeds in [0, 2**32)

_INT = r"[+-]?\d+"


def _int(text, flag):
    try:
        return int(text)
    except ValueError:
        raise GenerateError(f"{flag}: '{text}' is not an integer") from None


def check_range(value, flag, low, high):
    """`value` itself when low <= value <= high; otherwise GenerateError naming `flag` and the valid range.

    Example:
        steps = check_range(steps, "--steps", 1, 10000)
    """
    if not low <= value <= high:
        show = lambda x: f"{x:,}" if isinstance(x, int) else f"{x:g}"  # noqa: E731
        raise GenerateError(f"{flag} must be between {show(low)} and {show(high)} (got {show(value)})")
    return value


def parse_int_list(text, flag="--seeds", allow_negative=False):
    """'0-9,20,100-105' -> [0..9, 20, 100..105]; ranges are inclusive, order and repeats are kept."""
    if text is None or not str(text).strip():
        raise GenerateError(f"{flag}: empty list; write e.g. 0-9,20,100-105")
    out = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            raise GenerateError(f"{flag}: empty item in '{text}' (stray comma?)")
        m = re.fullmatch(rf"({_INT})(?:-({_INT}))?", part) if allow_negative else \
            re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise GenerateError(f"{flag}: cannot parse '{part}' in '{text}'; write e.g. 0-9,20,100-105")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise GenerateError(f"{flag}: range '{part}' runs backwards; write {hi}-{lo}")
        if hi - lo >= 1_000_000:
            raise GenerateError(f"{flag}: range '{part}' has more than a million values")
        out.extend(range(lo, hi + 1))
    return out


def parse_seeds(text, flag="--seeds"):
    """A seed list such as '0-9,20,100-105'; every seed must be a valid RandomState seed."""
    seeds = parse_int_list(text, flag)
    bad = [s for s in seeds if s > MAX_SEED]
    if bad:
        raise GenerateError(f"{flag}: seed {bad[0]} is out of range; seeds go from 0 to {MAX_SEED}")
    return seeds


def parse_float_list(text, flag="--psi"):
    """'1,0.7,0.5,0,-0.5,-1' -> [1.0, 0.7, ...]."""
    out = []
    for part in str(text).replace(" ", "").split(","):
        try:
            value = float(part)
        except ValueError:
            raise GenerateError(f"{flag}: '{part}' is not a number (in '{text}')") from None
        if not np.isfinite(value):
            raise GenerateError(f"{flag}: '{part}' is not a finite number")
        out.append(value)
    return out


def parse_linspace(text, flag="--scale"):
    """'START:STOP:COUNT' -> np.linspace(START, STOP, COUNT), e.g. '-3:3:7'."""
    parts = str(text).replace(" ", "").split(":")
    if len(parts) != 3:
        raise GenerateError(f"{flag}: '{text}' must be START:STOP:COUNT, e.g. -3:3:7")
    try:
        start, stop = float(parts[0]), float(parts[1])
        count = int(parts[2])
    except ValueError:
        raise GenerateError(f"{flag}: '{text}' must be START:STOP:COUNT with a whole COUNT, e.g. -3:3:7") from None
    if count < 1 or count > 1000:
        raise GenerateError(f"{flag}: COUNT must be between 1 and 1000 (got {count})")
    return np.linspace(start, stop, count)


def parse_grid(text, flag="--grid"):
    """'RxC' -> (rows, cols)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(text))
    if m is None or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise GenerateError(f"{flag}: '{text}' must be ROWSxCOLS, e.g. 2x5")
    return int(m.group(1)), int(m.group(2))


def seed_to_z(seed, z_dim):
    """NVIDIA's definition: z = np.random.RandomState(seed).randn(z_dim) (float64 -> float32)."""
    return np.random.RandomState(int(seed)).randn(int(z_dim)).astype(np.float32)


def seeds_to_z(seeds, z_dim):
    """[len(seeds), z_dim] float32, one row per seed by `seed_to_z`."""
    return np.stack([seed_to_z(s, z_dim) for s in seeds]) if len(seeds) else np.zeros([0, z_dim], np.float32)


# --- layer sets -------------------------------------------------------------------------------------

# The paper's bands at 1024x1024 (18 layers): coarse = 4^2-8^2 (layers 0-3), middle = 16^2-32^2 (4-7),
# fine = 64^2-1024^2 (8-17). Smaller networks have fewer layers; the bands keep the same proportions
# (4/18 and 8/18 of the depth) so each stays non-empty down to 8x8.
def band_edges(num_layers):
    """(coarse_end, middle_end): coarse = [0, c), middle = [c, m), fine = [m, num_layers)."""
    num_layers = int(num_layers)
    if num_layers < 3:
        raise GenerateError(f"the network has only {num_layers} style layers; coarse/middle/fine need 3 or more")
    c = min(max(1, int(round(num_layers * 4 / 18))), num_layers - 2)
    m = min(max(c + 1, int(round(num_layers * 8 / 18))), num_layers - 1)
    return c, m


def preset_layers(name, num_layers):
    c, m = band_edges(num_layers)
    return {"coarse": list(range(0, c)), "middle": list(range(c, m)), "fine": list(range(m, num_layers)),
            "all": list(range(num_layers)), "none": []}[name]


PRESETS = ("coarse", "middle", "fine", "all", "none")


def parse_layers(text, num_layers, flag="--styles"):
    """A layer set: a preset (coarse|middle|fine|all|none), or indices like '0-3' or '0-3,8'.
    A range may be open at the end ('8-' = 8 to the last layer)."""
    text = str(text).strip().lower()
    if text in PRESETS:
        return preset_layers(text, num_layers)
    text = re.sub(r"(\d+)-$", lambda m: f"{m.group(1)}-{num_layers - 1}", text)
    text = re.sub(r"(\d+)-,", lambda m: f"{m.group(1)}-{num_layers - 1},", text)
    layers = parse_int_list(text, flag)
    bad = [i for i in layers if i >= num_layers]
    if bad:
        raise GenerateError(f"{flag}: layer {bad[0]} is out of range; this network has layers 0-{num_layers - 1}")
    return sorted(set(layers))
