"""Editing w along an attribute: linearly (w + a * step * n) or, as the "StyleGAN to generate anything" project
does, by gradient descent in W on the two-layer predictor, on a chosen set of layers (coarse / middle / fine /
all, the style-mixing bands).

Amounts: in linear mode, standard deviations of the sampled w along the direction; in gradient mode, the
target change of the predicted attribute in standard deviations of the labeler's scores on generated images.
So `-2:2:5` means "from two standard deviations less to two more" in both modes.
"""
import dataclasses
import os

import numpy as np

from stylegan_tf.editing.errors import EditError
from stylegan_tf.generate.seeds import check_range

MODES = ("linear", "gradient")
# Amounts are standard deviations of W along the direction; past this many, w has left the distribution the
# network was trained on (and 1e308 overflows to NaN).
MAX_AMOUNT = 20.0
MAX_STEPS = 10000
# What every summary `edit` writes beside its grid holds (so --overwrite knows one of ours).
SUMMARY_KEYS = ("amounts", "attribute", "predicted", "measured")


@dataclasses.dataclass
class EditResult:
    """What `edit` made. images uint8 [S, A, H, W, C]; w [S, A, L, D]; predicted [S, A, K] (two-layer
    predictor, labeler units, every key of the directions file); measured [S, A, K'] (the labeler's reading of
    the edited images, when a labeler was given) with `measured_keys`; grid uint8 HWC (rows seeds, columns
    amounts)."""
    amounts: np.ndarray
    keys: list
    w: np.ndarray
    predicted: np.ndarray
    images: np.ndarray = None
    grid: np.ndarray = None
    measured: np.ndarray = None
    measured_keys: list = None

    def summary(self, attribute):
        """Mean over rows of each key per amount, and each key's change end-to-end (first -> last amount)."""
        out = {"amounts": [float(a) for a in self.amounts], "attribute": attribute, "predicted": {}, "measured": {}}
        for name, values, keys in (("predicted", self.predicted, self.keys),
                                   ("measured", self.measured, self.measured_keys or [])):
            if values is None:
                continue
            for i, k in enumerate(keys):
                mean = values[:, :, i].mean(0)
                out[name][k] = {"mean": [round(float(v), 4) for v in mean],
                                "change": round(float(mean[-1] - mean[0]), 4)}
        return out


def edit_w(directions, w, attribute, amounts, mode="linear", layers=None, steps=200, lr=0.05,
           closeness=0.05, keep_others=1.0, hold_others=True):
    """Edited latents [S, A, L, D] from w [S, L, D] along `attribute` for each amount.

    Args:
        directions: a `Directions`.
        w: start latents [S, L, D].
        attribute: a key of the directions file.
        amounts: list of amounts (see the module docstring for units).
        mode: 'linear' (w + a * step * n) or 'gradient' (Adam on the two-layer predictor towards the target,
            plus `closeness` * mean squared standardized move and `keep_others` * the other keys' squared
            predicted change).
        layers: layer indices that move (None = all).
        hold_others: keep the directions file's other attributes where they are (linear: the direction with
            the others' directions projected out, InterFaceGAN's conditional manipulation; gradient: the
            `keep_others` penalty). False: linear uses the plain normal, gradient drops the penalty.
        steps, lr: gradient mode's Adam steps and learning rate (in standardized units of w).

    Example:
        w2 = edit_w(d, w, "smile", [-2, 0, 2], mode="gradient", layers=range(0, 4))
    """
    if mode not in MODES:
        raise EditError(f"--mode: '{mode}' is not one of {', '.join(MODES)}")
    w = np.asarray(w, np.float64)
    S, L, D = w.shape
    k = directions.index(attribute)
    layers = list(range(L)) if layers is None else sorted(set(int(i) for i in layers))
    if not layers:
        raise EditError("--layers: no layers selected")
    mask = np.zeros([1, L, 1])
    mask[:, layers] = 1.0
    out = np.zeros([S, len(amounts), L, D])
    if mode == "linear":
        if hold_others:
            n = directions.held_normals[k] * directions.held_step[k]
        else:
            n = directions.normals[k] * directions.step[k]
        for j, a in enumerate(amounts):
            out[:, j] = w + float(a) * n * mask
        return out.astype(np.float32)
    d = directions
    x0 = d.standardize(w.mean(1))
    p0 = d.mlp(x0)
    others = np.ones(len(d.keys)) if hold_others else np.zeros(len(d.keys))
    others[k] = 0.0
    for j, a in enumerate(amounts):
        target = p0[:, k] + float(a)
        delta = np.zeros([S, len(layers), D])  # move of each selected layer, in units of sigma
        m = np.zeros_like(delta)
        v = np.zeros_like(delta)
        for t in range(1, int(steps) + 1):
            x = x0 + delta.sum(1) / L  # the predictor reads the layers' mean
            p = d.mlp(x)
            g_out = np.zeros_like(p)
            g_out[:, k] = 2 * (p[:, k] - target)
            g_out += 2 * keep_others * others * (p - p0)
            g = d.mlp.grad_input(x, g_out)[:, None, :] / L + 2 * closeness * delta / D
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            delta -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        moved = w.copy()
        moved[:, layers] += delta * d.sigma
        out[:, j] = moved
    return out.astype(np.float32)


def _layer_list(layers, num_layers):
    from stylegan_tf.generate.seeds import parse_layers
    if layers is None or (isinstance(layers, str) and layers.strip().lower() == "all"):
        return list(range(num_layers))  # also for generators too shallow for the coarse/middle/fine bands
    if isinstance(layers, str):
        return parse_layers(layers, num_layers, "--layers")
    return sorted(set(int(i) for i in layers))


def edit(network, directions, attribute, amounts=(-2, -1, 0, 1, 2), seeds=None, w=None, mode="linear",
         layers="all", labeler=None, truncation_psi=1.0, noise=None, steps=200, hold_others=True, out=None,
         overwrite=False):
    """Edit generated seeds or given latents along an attribute; returns an `EditResult` (and writes the grid).

    Args:
        network: a network path or object with .Gs.
        directions: a directions path or `Directions` (refused if fitted on another network).
        attribute: the key to edit, e.g. 'smile'.
        amounts: the columns' amounts.
        seeds / w: rows from NVIDIA seeds, or latents ([D], [L, D], [N, L, D] array or a .npy path such as
            projection's w.npy; its noise.npz beside it is used for the noise maps).
        mode: 'linear' or 'gradient' (see `edit_w`).
        layers: 'coarse' | 'middle' | 'fine' | 'all' | indices like '0-3'.
        labeler: optional labeler (path or object) that reads every edited image: `measured`.
        truncation_psi: for seeds.
        hold_others: keep the other attributes of the directions file still (see `edit_w`).
        noise: list of noise maps to use instead of the network's stored ones (projection's).
        out: grid image path (rows seeds, columns amounts) and a `<out>.json` with the summary.

    Example:
        r = edit("net.keras", "directions.npz", "smile", [-2, 0, 2], seeds=[1, 2], labeler="labeler.keras")
        print(r.summary("smile"))
    """
    from stylegan_tf.editing.directions import check_labeler_fits, load_directions
    from stylegan_tf.editing.labeler import load_labeler
    from stylegan_tf.editing.latents import load_w, seeds_to_w
    from stylegan_tf.generate.output import check_image_path, check_ours_beside, check_writable
    from stylegan_tf.generate.sampling import load_generator
    from stylegan_tf.image_grid import make_grid, to_uint8
    amounts = np.asarray(list(amounts), np.float64)
    if amounts.size < 1 or amounts.size > 100:
        raise EditError("--amount: give between 1 and 100 amounts, e.g. -2:2:5")
    if not np.all(np.abs(amounts) <= MAX_AMOUNT):  # NaN too
        bad = amounts[~(np.abs(amounts) <= MAX_AMOUNT)][0]
        raise EditError(f"--amount: {bad:g} is out of range; amounts are standard deviations between "
                        f"{-MAX_AMOUNT:g} and {MAX_AMOUNT:g}")
    check_range(int(steps), "--steps", 1, MAX_STEPS)
    if (seeds is None) == (w is None):
        raise EditError("give either --seeds or --w")
    if mode not in MODES:
        raise EditError(f"--mode: '{mode}' is not one of {', '.join(MODES)}")
    if out is not None:
        check_image_path(out)
        check_writable([out, summary_path(out)], overwrite)
        check_ours_beside(summary_path(out), overwrite, SUMMARY_KEYS, "an edit summary")
    Gs = load_generator(network)
    d = load_directions(directions, Gs)
    d.index(attribute)
    lab = load_labeler(labeler) if labeler is not None else None
    if lab is not None:
        check_labeler_fits(lab, Gs)
    layer_list = _layer_list(layers, int(Gs.num_styles))
    if w is None:
        if not len(seeds):
            raise EditError("--seeds: no seeds given")
        w0 = seeds_to_w(Gs, seeds, truncation_psi)
    elif isinstance(w, (str, os.PathLike)):
        if noise is None:
            noise = _noise_beside(w, Gs)
        w0 = load_w(w, Gs)
    else:
        from stylegan_tf.editing.latents import check_w
        w0 = check_w(w, Gs)
    edited = edit_w(d, w0, attribute, amounts, mode, layer_list, steps=steps, hold_others=hold_others)
    S, A = edited.shape[:2]
    flat = edited.reshape([S * A] + list(edited.shape[2:]))
    images = synthesize(Gs, flat, noise)
    measured_keys = None
    if lab is not None:
        measured_keys = lab_keys(lab) + [k for k in d.keys if ":" in k and k.split(":")[0] in lab.names]
    measured = lab.scores(images, measured_keys).reshape(S, A, -1) if lab is not None else None
    result = EditResult(amounts=amounts, keys=list(d.keys), w=edited,
                        predicted=d.predict(flat.astype(np.float64)).reshape(S, A, -1),
                        measured=measured, measured_keys=measured_keys)
    u8 = to_uint8(images)
    result.images = u8.reshape([S, A] + list(u8.shape[1:]))
    result.grid = make_grid(u8, (S, A))
    if out is not None:
        from stylegan_tf.editing.labeler import write_json
        from stylegan_tf.generate.output import write_image
        write_image(result.grid, out)
        write_json(summary_path(out), {**result.summary(attribute), "mode": mode, "layers": layer_list,
                                       "hold_others": bool(hold_others),
                                       "rows": [int(s) for s in seeds] if seeds is not None else "w"})
    return result


def lab_keys(lab):
    """The labeler's continuous attributes. A categorical one's most likely class is no smooth number, so it is
    measured only where the directions file names one of its classes (`hair_color:blonde`)."""
    return [s["name"] for s in lab.specs if s["type"] == "continuous"]


def summary_path(out):
    return os.path.splitext(os.fspath(out))[0] + ".json"


def _noise_beside(w_path, Gs):
    p = os.path.join(os.path.dirname(os.path.abspath(os.fspath(w_path))), "noise.npz")
    if not os.path.isfile(p):
        return None
    with np.load(p, allow_pickle=False) as z:
        maps = [z[f"noise{i}"] for i in range(len(z.files))]
    shapes = [tuple(b.shape) for b in Gs.noise_buffers()]
    if [m.shape for m in maps] != shapes:
        raise EditError(f"{p}: noise maps do not fit this network; delete it or project again")
    return maps


def synthesize(Gs, w, noise=None, batch_size=32):
    """Gs.synthesize with const noise, temporarily using `noise` maps (projection's) when given."""
    if noise is None:
        return Gs.synthesize(w, noise_mode="const", batch_size=batch_size)
    buffers = Gs.noise_buffers()
    if [tuple(np.shape(n)) for n in noise] != [tuple(b.shape) for b in buffers]:
        raise EditError("noise: the maps do not fit this network's noise inputs (projected with another network?)")
    saved = [np.asarray(b) for b in buffers]
    try:
        for b, n in zip(buffers, noise):
            b.assign(np.asarray(n, np.float32))
        return Gs.synthesize(w, noise_mode="const", batch_size=batch_size)
    finally:
        for b, s in zip(buffers, saved):
            b.assign(s)


def format_summary(summary):
    lines = [f"{'amount':>22s}" + "".join(f"{a:>9.2f}" for a in summary["amounts"]) + "   change"]
    for name in ("measured", "predicted"):
        for k, v in summary[name].items():
            mark = "*" if k == summary["attribute"] else " "
            lines.append(f"{mark}{name[:4]} {k[:16]:>16s}" + "".join(f"{x:>9.3f}" for x in v["mean"])
                         + f"{v['change']:>9.3f}")
    return lines
