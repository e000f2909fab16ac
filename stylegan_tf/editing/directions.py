"""Attribute directions in W: the two-layer non-linear predictor of the "StyleGAN to generate anything" project
and a linear baseline.

Generated images are labelled by the labeler; each attribute key is one number per image (a continuous
attribute's value, or one class's probability for `name:class`). Then, on w (all layers of a sampled w are the
same vector):

- the **linear direction** (InterFaceGAN-style): a ridge least-squares fit of the standardized score on the
  standardized w; its normal `n` (unit length, in W) is the edit direction, and an amount `a` moves w by
  `a` standard deviations of the samples' projection on `n`;
- the **two-layer predictor**: standardized w -> tanh(hidden) -> all keys at once, trained by Adam on the mean
  squared error; editing descends its gradient in W (`edit.py`).

Accuracy is binary, as InterFaceGAN's: does the prediction fall on the same side of the training median as the
labeler's score? R^2 is reported too. Both are measured on held-out samples, and for growing numbers of
labelled samples (the "100 labels -> 80 %" claim of "StyleGAN to generate anything").
"""
import json
import os
import zipfile

import numpy as np

from stylegan_tf.editing.errors import EditError
from stylegan_tf.generate.seeds import check_range

FORMAT = "stylegan_tf-directions-1"
# Valid ranges of the fit's flags: a predictor of 0 units or 0 steps is untrained; the upper bounds are far past
# any gain and keep a typo from taking hours or all memory.
MAX_HIDDEN = 4096
MAX_STEPS = 100000
MAX_BATCH = 4096
CURVE_SIZES = (10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)


# --- the two predictors (numpy: small, exact gradients, no backend needed) ---------------------------

def fit_linear(x, y, ridge=1.0):
    """Ridge least squares y ~ x @ coef + bias on standardized inputs; returns (coef [D, K], bias [K])."""
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    d = x.shape[1]
    coef = np.linalg.solve(xc.T @ xc + ridge * len(x) / 100.0 * np.eye(d) + 1e-6 * np.eye(d), xc.T @ yc)
    return coef, ym - xm @ coef


class TwoLayer:
    """f(x) = tanh(x @ W1 + b1) @ W2 + b2 on standardized w; `grad_input` gives d f_k / d x for editing."""

    def __init__(self, W1, b1, W2, b2):
        self.W1, self.b1, self.W2, self.b2 = (np.asarray(a, np.float64) for a in (W1, b1, W2, b2))

    @classmethod
    def fit(cls, x, y, hidden=64, steps=1500, lr=0.01, weight_decay=1e-3, seed=0):
        """Full-batch Adam on the mean squared error plus an L2 penalty (x, y standardized)."""
        rng = np.random.RandomState(seed)
        d, k = x.shape[1], y.shape[1]
        params = [rng.randn(d, hidden) / np.sqrt(d), np.zeros(hidden), rng.randn(hidden, k) / np.sqrt(hidden),
                  np.zeros(k)]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        n = len(x)
        for t in range(1, int(steps) + 1):
            W1, b1, W2, b2 = params
            h = np.tanh(x @ W1 + b1)
            err = (h @ W2 + b2 - y) * (2.0 / (n * k))
            gW2 = h.T @ err + 2 * weight_decay * W2
            gb2 = err.sum(0)
            dh = (err @ W2.T) * (1 - h * h)
            gW1 = x.T @ dh + 2 * weight_decay * W1
            gb1 = dh.sum(0)
            for i, g in enumerate((gW1, gb1, gW2, gb2)):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                params[i] = params[i] - lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
        return cls(*params)

    def __call__(self, x):
        return np.tanh(x @ self.W1 + self.b1) @ self.W2 + self.b2

    def grad_input(self, x, g_out):
        """Vector-Jacobian product: d(sum(g_out * f(x))) / dx, for x [N, D] and g_out [N, K]."""
        h = np.tanh(x @ self.W1 + self.b1)
        return ((g_out @ self.W2.T) * (1 - h * h)) @ self.W1.T


def conditional_normals(grads):
    """InterFaceGAN's conditional manipulation: each key's linear gradient in W [D, K] with the other keys'
    gradients projected out, unit length [K, D]. Moving along it leaves the other keys' linear predictions
    unchanged (with one key, it is the plain normal)."""
    out = []
    for k in range(grads.shape[1]):
        others = np.delete(grads, k, axis=1)
        g = grads[:, k]
        if others.shape[1]:
            q, _ = np.linalg.qr(others)
            g = g - q @ (q.T @ g)
        out.append(g / (np.linalg.norm(g) + 1e-12))
    return np.stack(out)


def _scores(pred, truth, median):
    """Binary accuracy around the training median, and R^2, per column."""
    acc = np.mean((pred > median) == (truth > median), axis=0)
    ss = np.sum((truth - truth.mean(0)) ** 2, axis=0)
    r2 = 1.0 - np.sum((truth - pred) ** 2, axis=0) / np.maximum(ss, 1e-12)
    return acc, r2


# --- the fitted result ---------------------------------------------------------------------------------

class Directions:
    """Fitted directions for one network. Units: `predict` returns the labeler's units (value or probability).

    Attributes: keys, fingerprint, mu/sigma (w statistics), y_mean/y_std/y_median (score statistics), normals
    [K, D] (unit linear directions in W), step [K] (std of the samples' w along each normal), held_normals /
    held_step (the same with the other keys' directions projected out), linear coef/bias,
    mlp (TwoLayer), metrics (held-out), curve (accuracy vs labelled samples), info (how it was made).

    Example:
        d = load_directions("directions.npz", Gs)
        print(d.metrics["smile"])
    """

    def __init__(self, **arrays):
        self.__dict__.update(arrays)
        self.mlp = TwoLayer(arrays["W1"], arrays["b1"], arrays["W2"], arrays["b2"])

    def index(self, key, flag="--attribute"):
        if key not in self.keys:
            raise EditError(f"{flag}: unknown attribute '{key}'; the directions file has: {', '.join(self.keys)}")
        return self.keys.index(key)

    def standardize(self, w):
        """w [N, D] -> the predictors' input."""
        return (np.asarray(w, np.float64) - self.mu) / self.sigma

    def predict(self, w, model="mlp"):
        """w [N, D] (or [N, L, D]: the layers' mean) -> predicted scores [N, K] in the labeler's units."""
        w = np.asarray(w, np.float64)
        if w.ndim == 3:
            w = w.mean(1)
        x = self.standardize(w)
        ys = self.mlp(x) if model == "mlp" else x @ self.coef + self.bias
        return ys * self.y_std + self.y_mean

    def save(self, path):
        from stylegan_tf.atomic import atomic_path
        arrays = {k: np.asarray(getattr(self, k)) for k in _ARRAYS}
        arrays["keys"] = np.array(self.keys)
        arrays["format"] = np.array(FORMAT)
        arrays["fingerprint"] = np.array(self.fingerprint)
        arrays["json"] = np.array(json.dumps({"metrics": self.metrics, "curve": self.curve, "info": self.info}))
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        return os.fspath(path)


_ARRAYS = ("mu", "sigma", "y_mean", "y_std", "y_median", "normals", "step", "held_normals", "held_step", "coef",
           "bias", "W1", "b1", "W2", "b2")


def load_directions(path, Gs=None, flag="--directions"):
    """Read a directions file; with `Gs`, refuse one fitted on another network (fingerprint mismatch).

    Example:
        d = load_directions("directions.npz", load_network("net.keras").Gs)
    """
    if isinstance(path, Directions):
        d = path
    else:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise EditError(f"{flag}: {path} does not exist (make one with `generate.py directions`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != FORMAT:
                    raise KeyError("format")
                arrays = {k: z[k] for k in _ARRAYS}
                meta = json.loads(str(z["json"]))
                d = Directions(**arrays, keys=[str(k) for k in z["keys"]], fingerprint=str(z["fingerprint"]),
                               metrics=meta["metrics"], curve=meta["curve"], info=meta["info"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            raise EditError(f"{flag}: {path} is not a directions file written by `generate.py directions`") \
                from None
    if Gs is not None:
        from stylegan_tf.editing.latents import network_fingerprint
        fp = network_fingerprint(Gs)
        if fp != d.fingerprint:
            raise EditError(f"{flag}: {path} was fitted on another network (fingerprint {d.fingerprint}, this "
                            f"network {fp}); run `generate.py directions` with this network")
    return d


# --- fitting ---------------------------------------------------------------------------------------------

def check_labeler_fits(labeler, Gs, flag="--labeler"):
    """The labeler must read images of exactly the generator's size and channels."""
    if (labeler.resolution, labeler.channels) != (Gs.resolution, Gs.num_channels):
        raise EditError(f"{flag}: {labeler.path or 'the labeler'} was trained on {labeler.resolution}x"
                        f"{labeler.resolution}x{labeler.channels} images but the network makes {Gs.resolution}x"
                        f"{Gs.resolution}x{Gs.num_channels}; retrain it with `generate.py attributes train "
                        f"--resolution {Gs.resolution}`")


def label_samples(Gs, labeler, keys, w, batch_size=32, progress=True):
    """The labeler's scores [N, K] of the images generated from w [N, L, D] (const noise)."""
    out = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(w), desc="labelling", unit="img", leave=False)
    for i in range(0, len(w), batch_size):
        images = Gs.synthesize(w[i:i + batch_size], noise_mode="const")
        out.append(labeler.scores(images, keys))
        if bar is not None:
            bar.update(len(images))
    if bar is not None:
        bar.close()
    return np.concatenate(out)


def _fit(x, y, hidden, steps, seed):
    """Both predictors on standardized (x, y) -> (coef, bias, mlp)."""
    coef, bias = fit_linear(x, y)
    return coef, bias, TwoLayer.fit(x, y, hidden=hidden, steps=steps, seed=seed)


def fit_directions(network, labeler, attributes, samples=2000, heldout=0.2, seed=0, hidden=64, steps=1500,
                   truncation_psi=1.0, curve_sizes=CURVE_SIZES, out=None, overwrite=False, batch_size=32,
                   progress=True):
    """Sample w, label the images, fit both predictors per attribute key; returns `Directions`.

    Args:
        network: a network path or an object with .Gs (or Gs itself).
        labeler: a labeler path or `Labeler`; it must read the network's resolution.
        attributes: keys, e.g. ['smile', 'yaw', 'hair_color:blonde'] or 'smile,yaw'.
        samples: latents sampled (and images labelled); `heldout` of them measure accuracy.
        seed: the RandomState seed of the sampled z.
        hidden, steps: width and Adam steps of the two-layer predictor.
        truncation_psi: sample from a truncated W (1 = none).
        curve_sizes: numbers of labelled samples for the accuracy-vs-labels curve.
        out: .npz path to write, or None.

    Example:
        d = fit_directions("net.keras", "labeler.keras", "smile,yaw", samples=2000, out="directions.npz")
    """
    from stylegan_tf.editing.labeler import load_labeler
    from stylegan_tf.editing.latents import network_fingerprint, sample_w
    from stylegan_tf.generate.sampling import load_generator
    if out is not None:
        out = os.fspath(out)
        if not out.endswith(".npz"):
            raise EditError(f"--out: {out} must end in .npz")
        from stylegan_tf.generate.output import check_writable
        check_writable([out], overwrite)
    if int(samples) < 20:
        raise EditError(f"--samples must be at least 20 (got {samples})")
    check_range(int(hidden), "--hidden", 1, MAX_HIDDEN)
    check_range(int(steps), "--steps", 1, MAX_STEPS)
    check_range(int(batch_size), "--batch", 1, MAX_BATCH)
    if not 0.0 < float(heldout) < 0.9:
        raise EditError(f"--heldout must be between 0 and 0.9 (got {heldout})")
    lab = load_labeler(labeler)
    keys = [k.strip() for k in attributes.split(",")] if isinstance(attributes, str) else list(attributes)
    keys = [k for k in keys if k]
    if not keys:
        raise EditError("--attributes: no attribute names given")
    for k in keys:
        lab.parse_key(k)
    Gs = load_generator(network)
    if getattr(Gs, "label_size", 0):
        raise EditError("--network: editing supports unconditional networks only")
    check_labeler_fits(lab, Gs)
    _, w = sample_w(Gs, samples, seed, truncation_psi)
    y = label_samples(Gs, lab, keys, w, batch_size, progress).astype(np.float64)
    # The predictors read the mean of the style rows: w itself for the official mapping (every row the same),
    # and still one vector for a per-level mapping; an edit that moves every row by n moves the mean by n.
    x_raw = w.mean(1).astype(np.float64)
    n_test = max(int(round(len(x_raw) * heldout)), 5)
    order = np.random.RandomState(seed + 1).permutation(len(x_raw))
    test, train = order[:n_test], order[n_test:]
    mu, sigma = x_raw[train].mean(0), x_raw[train].std(0) + 1e-8
    flat = [k for k, sd in zip(keys, y[train].std(0)) if sd < 1e-5]
    if flat:
        raise EditError(f"--attributes: the labeler reads the same '{flat[0]}' on every generated image; the network "
                        "does not vary it (untrained?) or the labeler cannot see it")
    y_mean, y_std = y[train].mean(0), y[train].std(0) + 1e-8
    x, ys = (x_raw - mu) / sigma, (y - y_mean) / y_std
    median = np.median(ys[train], axis=0)
    coef, bias, mlp = _fit(x[train], ys[train], hidden, steps, seed)
    acc_lin, r2_lin = _scores(x[test] @ coef + bias, ys[test], median)
    acc_mlp, r2_mlp = _scores(mlp(x[test]), ys[test], median)
    # The linear fit's gradient in raw W is coef / sigma; its unit normal is the edit direction.
    normals = (coef / sigma[:, None]).T
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    step = np.std(x_raw[train] @ normals.T, axis=0)
    held = conditional_normals(coef / sigma[:, None])
    held_step = np.std(x_raw[train] @ held.T, axis=0)
    metrics = {k: {"linear_accuracy": round(float(acc_lin[i]), 4), "linear_r2": round(float(r2_lin[i]), 4),
                   "mlp_accuracy": round(float(acc_mlp[i]), 4), "mlp_r2": round(float(r2_mlp[i]), 4),
                   "score_mean": round(float(y_mean[i]), 5), "score_std": round(float(y_std[i]), 5)}
               for i, k in enumerate(keys)}
    curve = []
    for n in curve_sizes:
        if n > len(train):
            break
        sub = train[:n]
        c, b, m = _fit(x[sub], ys[sub], hidden, steps, seed)
        med = np.median(ys[sub], axis=0)
        a_l, _ = _scores(x[test] @ c + b, ys[test], med)
        a_m, _ = _scores(m(x[test]), ys[test], med)
        curve.append({"labels": int(n), "linear": [round(float(a), 4) for a in a_l],
                      "mlp": [round(float(a), 4) for a in a_m]})
    info = {"samples": int(samples), "heldout": int(n_test), "seed": int(seed), "hidden": int(hidden),
            "steps": int(steps), "truncation_psi": float(truncation_psi),
            "labeler": os.fspath(lab.path) if lab.path else None, "resolution": int(Gs.resolution)}
    d = Directions(mu=mu, sigma=sigma, y_mean=y_mean, y_std=y_std, y_median=median * y_std + y_mean,
                   normals=normals, step=step, held_normals=held, held_step=held_step, coef=coef, bias=bias,
                   W1=mlp.W1, b1=mlp.b1, W2=mlp.W2, b2=mlp.b2,
                   keys=keys, fingerprint=network_fingerprint(Gs), metrics=metrics, curve=curve, info=info)
    if out is not None:
        d.save(out)
    return d


def format_report(d):
    """Held-out accuracy per key and the accuracy-vs-labels curve as printable lines."""
    lines = [f"held-out ({d.info['heldout']} samples): accuracy = same side of the median as the labeler"]
    for k in d.keys:
        m = d.metrics[k]
        lines.append(f"  {k:20s} two-layer acc {m['mlp_accuracy']:.3f} R^2 {m['mlp_r2']:.3f} | "
                     f"linear acc {m['linear_accuracy']:.3f} R^2 {m['linear_r2']:.3f}")
    if d.curve:
        lines.append("accuracy vs labelled samples (two-layer / linear):")
        lines.append("  " + "labels".rjust(7) + "".join(f"{k[:18]:>20s}" for k in d.keys))
        for row in d.curve:
            cells = "".join(f"{f'{a:.3f} / {b:.3f}':>20s}" for a, b in zip(row["mlp"], row["linear"]))
            lines.append(f"  {row['labels']:7d}" + cells)
    return lines
