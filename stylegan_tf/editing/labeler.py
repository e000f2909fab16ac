"""The labeler: a small Keras CNN that reads attributes from images (the "other model" that labelled generated
faces in the "StyleGAN to generate anything" project).

Its labels come from one of three places, all aligned with the dataset's record order:
- the dataset's attribute columns (`<name>-attributes.npy`, described in dataset.json: the demo faces' 15);
- the dataset's `.labels` (e.g. `dataset_tool.py --labels-from-subdirs`): one categorical attribute `class`;
- a user CSV with a header `file,attr1,attr2,...`: `file` is a path as listed in the dataset's `files.json`
  (what dataset_tool kept, in record order) or, with an `index` column instead, the record number. Numeric
  columns are continuous attributes, others categorical; an empty cell is "unknown" (left out of that
  attribute's loss); images without a row are not used.

A continuous attribute is regressed (in units of its standard deviation); a categorical one is classified.
The attribute descriptions travel inside the .keras file (an extra zip member), so a labeler file alone is
enough to use it; its held-out scores are also written beside it as JSON.
"""
import csv
import json
import os
import zipfile

import numpy as np

from stylegan_tf.editing.errors import EditError
from stylegan_tf.generate.seeds import check_range

SPEC_MEMBER = "stylegan_tf_labeler.json"
MAX_BATCH = 4096
# What the scores file written beside a labeler holds (so --overwrite knows one of ours).
SCORES_KEYS = ("heldout", "train_images", "heldout_images")


# --- where labels come from ---------------------------------------------------------------------------

def _dataset_attributes(info):
    """({name: values [N]}, {name: spec}) of the dataset's own attributes and labels."""
    values, specs = {}, {}
    for spec in info.metadata.get("attributes") or []:
        name = spec["name"]
        if name in info.attributes:
            values[name] = info.attributes[name]
            specs[name] = {"name": name, "type": spec.get("type", "continuous")}
            if specs[name]["type"] == "categorical":
                specs[name]["categories"] = list(spec["categories"])
    if info.label_size:
        labels = info.labels
        one_hot = np.all((labels == 0) | (labels == 1)) and np.all(labels.sum(1) == 1)
        names = info.label_names or [str(i) for i in range(info.label_size)]
        if one_hot:
            values["class"] = labels.argmax(1).astype(np.float32)
            specs["class"] = {"name": "class", "type": "categorical", "categories": list(map(str, names))}
        else:
            for i, n in enumerate(names):
                key = n if n not in values else f"label_{n}"
                values[key] = labels[:, i]
                specs[key] = {"name": key, "type": "continuous"}
    return values, specs


def read_user_labels(csv_path, info):
    """A user CSV -> ({name: float32 [N] with NaN where unknown}, {name: spec}) in the dataset's record order.

    Args:
        csv_path: a CSV whose header is `file,attr1,...` (paths as in the dataset's files.json) or
            `index,attr1,...` (record numbers).
        info: the opened dataset (`stylegan_tf.data.open_dataset`).

    Example:
        values, specs = read_user_labels("my_labels.csv", open_dataset("datasets/mine"))
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise EditError(f"--labels: cannot read {csv_path} ({getattr(e, 'strerror', None) or e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise EditError(f"--labels: {csv_path} needs a header line (file,attr1,...) and at least one row")
    header = [h.strip() for h in rows[0]]
    key = header[0].lower()
    if key not in ("file", "index") or len(header) < 2:
        raise EditError(f"--labels: {csv_path} must start with a header 'file,attr1,...' or 'index,attr1,...' "
                        f"(got '{','.join(header)}')")
    if key == "file":
        files_json = os.path.join(info.path, info.metadata.get("files_file") or "files.json")
        if not os.path.isfile(files_json):
            raise EditError(f"--labels: {info.path} has no files.json (it was not made by dataset_tool "
                            "create_from_images); use an 'index' column with record numbers instead of 'file'")
        with open(files_json, encoding="utf-8") as f:
            position = {os.path.normpath(p): i for i, p in enumerate(json.load(f))}
    names = header[1:]
    repeated = sorted({n for n in header if header.count(n) > 1})
    if repeated or "" in names:
        what = f"names the column '{repeated[0]}' twice" if repeated else "has a column without a name"
        raise EditError(f"--labels: {csv_path} {what}; give each attribute one column with its own name")
    raw = {n: [""] * info.num_images for n in names}
    seen = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise EditError(f"--labels: {csv_path} line {line} has {len(row)} fields, the header {len(header)}")
        ident = row[0].strip()
        if key == "file":
            idx = position.get(os.path.normpath(ident))
            if idx is None:
                raise EditError(f"--labels: {csv_path} line {line}: '{ident}' is not in {files_json} (paths are "
                                "relative to the folder given to dataset_tool, e.g. cats/001.jpg)")
        else:
            try:
                idx = int(ident)
            except ValueError:
                idx = -1
            if not 0 <= idx < info.num_images:
                raise EditError(f"--labels: {csv_path} line {line}: index '{ident}' is not a record number "
                                f"0-{info.num_images - 1}")
        if idx in seen:
            raise EditError(f"--labels: {csv_path} line {line} labels record '{ident}' again (line {seen[idx]} "
                            "did already); give each image one row")
        seen[idx] = line
        for n, cell in zip(names, row[1:]):
            raw[n][idx] = cell.strip()
    values, specs = {}, {}
    for n in names:
        cells = raw[n]
        known = [c for c in cells if c != ""]
        if not known:
            raise EditError(f"--labels: column '{n}' of {csv_path} has no values")
        try:
            values[n] = np.array([float(c) if c != "" else np.nan for c in cells], np.float32)
            specs[n] = {"name": n, "type": "continuous"}
        except ValueError:
            cats = sorted(set(known))
            index = {c: i for i, c in enumerate(cats)}
            values[n] = np.array([index[c] if c != "" else np.nan for c in cells], np.float32)
            specs[n] = {"name": n, "type": "categorical", "categories": cats}
    return values, specs


def available_attributes(info, labels_csv=None):
    """({name: values}, {name: spec}) the labeler can learn from `info` (and a user CSV, which wins)."""
    values, specs = _dataset_attributes(info)
    if labels_csv is not None:
        v, s = read_user_labels(labels_csv, info)
        values.update(v)
        specs.update(s)
    return values, specs


def select_attributes(names, specs, flag="--attributes", what="the dataset"):
    """Validate attribute names against `specs`; None means all of them."""
    if names is None:
        return list(specs)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise EditError(f"{flag}: no attribute names given")
    unknown = [n for n in names if n not in specs]
    if unknown:
        have = ", ".join(specs) or "none"
        raise EditError(f"{flag}: unknown attribute '{unknown[0]}'; {what} has: {have}")
    return list(dict.fromkeys(names))


# --- the model ----------------------------------------------------------------------------------------

def _head_sizes(specs):
    return [len(s["categories"]) if s["type"] == "categorical" else 1 for s in specs]


def build_model(resolution, channels, specs, width=32):
    """A plain CNN: conv + stride-2 convs down to 4x4, one dense layer, all heads concatenated."""
    import keras
    inp = keras.Input((resolution, resolution, channels), name="image")
    x = keras.layers.Conv2D(width, 3, padding="same", activation="leaky_relu", name="conv_in")(inp)
    res, ch = resolution, width
    while res > 4:
        ch = min(ch * 2, width * 4)
        x = keras.layers.Conv2D(ch, 3, strides=2, padding="same", activation="leaky_relu", name=f"conv{res // 2}")(x)
        res //= 2
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="leaky_relu", name="features")(x)
    out = keras.layers.Dense(sum(_head_sizes(specs)), name="heads")(x)
    return keras.Model(inp, out, name="labeler")


def _loss_fn(specs):
    from keras import ops
    sizes = _head_sizes(specs)

    def loss(y_true, y_pred):
        total, start = 0.0, 0
        for spec, k in zip(specs, sizes):
            t, p = y_true[:, start:start + k], y_pred[:, start:start + k]
            known = ops.logical_not(ops.isnan(t[:, 0]))
            weight = ops.cast(known, "float32")
            t = ops.where(ops.isnan(t), 0.0, t)
            if spec["type"] == "categorical":
                per = ops.categorical_crossentropy(t, p, from_logits=True)
            else:
                per = ops.square(t[:, 0] - p[:, 0])
            total = total + ops.sum(per * weight) / ops.maximum(ops.sum(weight), 1.0)
            start += k
        return total
    return loss


def _targets(values, specs):
    cols = []
    for spec in specs:
        v = values[spec["name"]].astype(np.float64)
        if spec["type"] == "categorical":
            k = len(spec["categories"])
            onehot = np.full([len(v), k], np.nan, np.float32)
            ok = ~np.isnan(v)
            onehot[ok] = np.eye(k, dtype=np.float32)[v[ok].astype(int)]
            cols.append(onehot)
        else:
            cols.append(((v - spec["mean"]) / spec["std"]).astype(np.float32)[:, None])
    return np.concatenate(cols, axis=1)


class Labeler:
    """A trained labeler: `predict(images)` reads each attribute from images in the generator's range.

    Attributes: model (keras.Model), specs (list of attribute dicts), resolution, channels, metrics
    (held-out scores when known), path.

    Example:
        lab = load_labeler("labeler.keras")
        smile = lab.scores(Gs.run(z), ["smile"])[:, 0]
    """

    def __init__(self, model, specs, resolution, channels, metrics=None, path=None):
        self.model, self.specs = model, list(specs)
        self.resolution, self.channels = int(resolution), int(channels)
        self.metrics, self.path = metrics or {}, path
        self._sizes = _head_sizes(self.specs)
        self._fn = None

    @property
    def names(self):
        return [s["name"] for s in self.specs]

    def spec(self, name):
        return self.specs[self.names.index(name)]

    def raw(self, images, batch_size=256):
        """Images NHWC float in [-1, 1] (the generator's range) -> the heads' raw outputs [N, sum(sizes)]."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (self.resolution, self.resolution, self.channels):
            raise EditError(f"the labeler reads {self.resolution}x{self.resolution}x{self.channels} images, got "
                            f"{list(images.shape[1:])}")
        if self._fn is None:
            from stylegan_tf.networks.inference import compiled
            model = self.model
            self._fn = compiled(lambda x: model(x, training=False), model.variables)
        out = [np.asarray(self._fn(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros([0, sum(self._sizes)], np.float32)

    def decode(self, raw):
        """Raw head outputs -> {name: value [N] (continuous, original units) or probabilities [N, K]}."""
        out, start = {}, 0
        for spec, k in zip(self.specs, self._sizes):
            h = raw[:, start:start + k]
            if spec["type"] == "categorical":
                e = np.exp(h - h.max(1, keepdims=True))
                out[spec["name"]] = e / e.sum(1, keepdims=True)
            else:
                out[spec["name"]] = h[:, 0] * spec["std"] + spec["mean"]
            start += k
        return out

    def predict(self, images, batch_size=256):
        """{name: continuous value [N] or class probabilities [N, K]} for images in [-1, 1]."""
        return self.decode(self.raw(images, batch_size))

    def parse_key(self, key, flag="--attributes"):
        """'smile' or 'hair_color:blonde' (a categorical attribute's one class) -> (name, class index or None)."""
        name, _, cat = str(key).partition(":")
        if name not in self.names:
            raise EditError(f"{flag}: unknown attribute '{name}'; the labeler reads: {', '.join(self.names)}")
        spec = self.spec(name)
        if spec["type"] == "categorical":
            if not cat:
                raise EditError(f"{flag}: '{name}' is categorical; name one class as {name}:CLASS with CLASS one of "
                                f"{', '.join(spec['categories'])}")
            if cat not in spec["categories"]:
                raise EditError(f"{flag}: '{cat}' is not a class of {name} ({', '.join(spec['categories'])})")
            return name, spec["categories"].index(cat)
        if cat:
            raise EditError(f"{flag}: '{name}' is continuous; drop ':{cat}'")
        return name, None

    def scores(self, images, keys, batch_size=256):
        """One number per image and key: a continuous attribute's value or a class's probability. [N, len(keys)]"""
        pred = self.predict(images, batch_size)
        cols = []
        for key in keys:
            name, cat = self.parse_key(key)
            cols.append(pred[name] if cat is None else pred[name][:, cat])
        return np.stack(cols, axis=1).astype(np.float32)

    def save(self, path):
        """Write the model with its attribute descriptions inside (atomically)."""
        from stylegan_tf.atomic import atomic_path
        meta = {"resolution": self.resolution, "channels": self.channels, "attributes": self.specs,
                "metrics": self.metrics}
        with atomic_path(path, suffix=".keras") as tmp:
            self.model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as z:
                z.writestr(SPEC_MEMBER, json.dumps(meta, indent=1))
        return os.fspath(path)


def load_labeler(path, flag="--labeler"):
    """A labeler written by `train_labeler` / `Labeler.save`.

    Args:
        path: the .keras file.
        flag: the option named in error messages.

    Example:
        lab = load_labeler("labeler.keras"); print(lab.names, lab.metrics)
    """
    if isinstance(path, Labeler):
        return path
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EditError(f"{flag}: {path} does not exist (make one with `generate.py attributes train`)")
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read(SPEC_MEMBER))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise EditError(f"{flag}: {path} is not a labeler written by `generate.py attributes train`") from None
    import keras
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means the same to the user
        raise EditError(f"{flag}: {path} cannot be read as a Keras model ({' '.join(str(exc).split())[:200]})") \
            from None
    return Labeler(model, meta["attributes"], meta["resolution"], meta["channels"], meta.get("metrics"), path)


# --- training -----------------------------------------------------------------------------------------

def _read_images(info, resolution, max_images):
    batches = list(info.iterate_uint8(resolution=resolution, max_images=max_images, batch_size=256))
    return np.concatenate(batches).astype(np.float32) / 127.5 - 1.0


def heldout_scores(labeler, images, values):
    """{name: {"accuracy": ...} or {"r2": ..., "mae": ...}, with "count"} on labelled images."""
    pred = labeler.predict(images)
    out = {}
    for spec in labeler.specs:
        name = spec["name"]
        t = values[name].astype(np.float64)
        ok = ~np.isnan(t)
        if not ok.any():
            continue
        if spec["type"] == "categorical":
            acc = float(np.mean(pred[name][ok].argmax(1) == t[ok].astype(int)))
            chance = float(np.bincount(t[ok].astype(int)).max() / ok.sum())
            out[name] = {"accuracy": round(acc, 4), "majority_baseline": round(chance, 4), "count": int(ok.sum())}
        else:
            p = pred[name][ok]
            ss = float(np.sum((t[ok] - t[ok].mean()) ** 2)) or 1.0
            out[name] = {"r2": round(1.0 - float(np.sum((t[ok] - p) ** 2)) / ss, 4),
                         "mae": round(float(np.mean(np.abs(t[ok] - p))), 5), "count": int(ok.sum())}
    return out


def train_labeler(data, attributes=None, out=None, resolution=None, labels_csv=None, epochs=10, batch_size=64,
                  heldout=0.1, max_images=None, width=32, seed=0, overwrite=False, progress=True):
    """Train a labeler on a dataset's reals and their attributes; returns the `Labeler`.

    Args:
        data: dataset folder (dataset_tool's or the demo's).
        attributes: names (list or 'a,b,c'); None = every attribute the dataset (and CSV) has.
        out: .keras path to write (and `<out without .keras>.json` with the held-out scores); None = keep in memory.
        resolution: the dataset level to train on; must equal the generator's resolution it will label
            (default: the dataset's full resolution).
        labels_csv: a user CSV (see `read_user_labels`).
        epochs, batch_size, width: training length, minibatch, first conv width.
        heldout: fraction of labelled images kept out of training to measure accuracy / R^2.
        max_images: use only the first N images.
        seed: split and initialisation seed.

    Example:
        lab = train_labeler("~/.cache/stylegan_tf/demo-faces-64", "smile,yaw", out="labeler.keras", resolution=32)
    """
    import keras

    from stylegan_tf.data import open_dataset
    if out is not None:
        out = os.fspath(out)
        if not out.endswith(".keras"):
            raise EditError(f"--out: {out} must end in .keras")
        _check_out(out, overwrite)
    if not 0.0 < float(heldout) < 0.9:
        raise EditError(f"--heldout must be between 0 and 0.9 (got {heldout})")
    check_range(int(batch_size), "--batch", 1, MAX_BATCH)
    info = open_dataset(os.path.expanduser(os.fspath(data)))
    values, specs = available_attributes(info, labels_csv)
    if not specs:
        raise EditError(f"--data: {info.path} has no attributes or labels; give --labels my_labels.csv "
                        "(header file,attr1,... with paths as in the dataset's files.json)")
    names = select_attributes(attributes, specs)
    resolution = info.resolution if resolution is None else int(resolution)
    if resolution not in info.levels:
        raise EditError(f"--resolution: {info.path} has levels {sorted(info.levels)}, not {resolution}")
    n = info.num_images if max_images is None else min(int(max_images), info.num_images)
    values = {k: values[k][:n] for k in names}
    usable = np.nonzero(np.any([~np.isnan(values[k]) for k in names], axis=0))[0]
    if len(usable) < 20:
        raise EditError(f"only {len(usable)} images have labels; the labeler needs at least 20")
    order = np.random.RandomState(seed).permutation(usable)
    n_test = max(int(round(len(order) * heldout)), 5)
    test, train = order[:n_test], order[n_test:]
    chosen = []
    for k in names:
        spec = dict(specs[k])
        if spec["type"] == "continuous":
            v = values[k][train]
            v = v[~np.isnan(v)]
            if v.size == 0:
                raise EditError(f"--attributes: '{k}' has no values among the training images")
            spec["mean"], spec["std"] = float(v.mean()), float(v.std() or 1.0)
        chosen.append(spec)
    images = _read_images(info, resolution, n)
    keras.utils.set_random_seed(seed)
    model = build_model(resolution, info.num_channels, chosen, width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=_loss_fn(chosen))
    y = _targets(values, chosen)
    model.fit(images[train], y[train], batch_size=batch_size, epochs=int(epochs), shuffle=True,
              verbose=2 if progress else 0)
    labeler = Labeler(model, chosen, resolution, info.num_channels)
    labeler.metrics = {"heldout": heldout_scores(labeler, images[test], {k: v[test] for k, v in values.items()}),
                       "train_images": int(len(train)), "heldout_images": int(len(test)), "epochs": int(epochs),
                       "data": info.path, "resolution": resolution,
                       "labels": "csv" if labels_csv else "dataset"}
    if out is not None:
        labeler.save(out)
        labeler.path = out
        write_json(metrics_path(out), labeler.metrics)
    return labeler


def metrics_path(out):
    """labeler.keras -> labeler.json (the held-out scores beside it)."""
    return os.path.splitext(os.fspath(out))[0] + ".json"


def write_json(path, obj):
    from stylegan_tf.atomic import atomic_path
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
    return os.fspath(path)


def _check_out(out, overwrite):
    from stylegan_tf.generate.output import check_ours_beside, check_writable
    check_writable([out, metrics_path(out)], overwrite)
    check_ours_beside(metrics_path(out), overwrite, SCORES_KEYS, "a labeler's scores")


def format_scores(heldout):
    """Held-out scores as printable lines."""
    lines = []
    for name, s in heldout.items():
        if "accuracy" in s:
            lines.append(f"  {name:16s} accuracy {s['accuracy']:.3f} (majority class {s['majority_baseline']:.3f}, "
                         f"{s['count']} held-out images)")
        else:
            lines.append(f"  {name:16s} R^2 {s['r2']:.3f}  MAE {s['mae']:.4f} ({s['count']} held-out images)")
    return lines
