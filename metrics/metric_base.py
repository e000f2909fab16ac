"""Metric registry, the shared evaluation context (reals, fakes, Inception, caches) and `calc_metrics`.

Adding a metric is one file: subclass `Metric`, implement `evaluate(ctx) -> {key: float}`, decorate a
factory with `@register(r"regex", example=...)`, and list the module in `METRIC_MODULES`.

    from stylegan_tf.metrics import metric_base
    results = metric_base.calc_metrics(network, ["fid50k", "swd16k"], data_dir, mirror=False,
                                       snapshot=None, batch_size=64, report_dir=None, progress=True)
"""
import abc
import hashlib
import importlib
import json
import os
import re
import sys
import time

import numpy as np

from stylegan_tf.atomic import atomic_path
from stylegan_tf.paths import cache_root

METRIC_MODULES = ("frechet_inception_distance", "kernel_inception_distance", "sliced_wasserstein",
                  "perceptual_path_length", "precision_recall", "inception_score")
CACHE_VERSION = 1
_REGISTRY = []  # (compiled regex, factory, example, usual names)
_FILE_DIGESTS = {}  # (path, size, mtime_ns, inode) -> sha256: hash each dataset file once per process
_INCEPTION_NETS = {}  # (weights path or None, mode) -> loaded network
_VGG_NETS = {}  # ("lpips" | "vgg16", the files) -> loaded LPIPS / VGG16 (training reuses them every snapshot)
NONCOMPARABLE_SUFFIX = "_keras_noncomparable"


class MetricError(ValueError):
    """A metric cannot run with these inputs (unknown name, wrong dataset, too few images...)."""


class Metric(abc.ABC):
    """One metric. `evaluate(ctx)` returns a dict of floats; the keys start with the metric's name."""

    uses_inception = False  # True for metrics that need the FID-Inception weights
    uses_lpips = False      # ... LPIPS (torchvision's VGG16 and the LPIPS heads)
    uses_vgg16 = False      # ... torchvision's VGG16 with its classifier

    def __init__(self, name):
        self.name = name

    @abc.abstractmethod
    def evaluate(self, ctx):
        """Compute the metric with the reals, fakes and networks of `ctx` (a `MetricContext`)."""


class InceptionMetric(Metric):
    """A metric on FID-Inception features of N fakes against N reals (or, with `full_reals`, all reals)."""

    uses_inception = True

    def __init__(self, name, num_images, full_reals=False):
        super().__init__(name)
        self.num_images = num_images
        self.full_reals = full_reals

    def counts(self, ctx):
        """(number of fakes, number of reals or None for all) for this evaluation."""
        num = ctx.num_override or self.num_images
        return num, None if self.full_reals else num


def register(pattern, example="", names=()):
    """Decorator: `factory(name, match) -> Metric` serves every metric name that fully matches `pattern`.

    `example` is shown in error messages; `names` are the usual names, listed by `list_metrics()`.
    """
    def wrap(factory):
        _REGISTRY.append((re.compile(pattern), factory, example or pattern, tuple(names)))
        return factory
    return wrap


def _load_builtin():
    for module in METRIC_MODULES:
        importlib.import_module(f"stylegan_tf.metrics.{module}")


def available_metrics():
    """One example string per registered metric family (e.g. 'fid50k, fid10k, fid50k_full')."""
    _load_builtin()
    return [entry[2] for entry in _REGISTRY]


def list_metrics():
    """The usual metric names (fid50k, kid50k, swd16k, ...). Any name matching a registered pattern is
    valid too (fid5k, swd2k, ...): validate user input with `parse_metric_names`, not with this list."""
    _load_builtin()
    return [n for entry in _REGISTRY for n in entry[3]]


def get_metric(name):
    """The `Metric` for a name such as 'fid50k'; `MetricError` naming the known ones otherwise."""
    _load_builtin()
    for pattern, factory, _, _ in _REGISTRY:
        match = pattern.fullmatch(name.strip())
        if match:
            metric = factory(name.strip(), match)
            if getattr(metric, "num_images", 2) < 2:
                raise MetricError(f"metric '{name}' would use no images; e.g. {name.replace('0', '50', 1)}")
            return metric
    raise MetricError(f"unknown metric '{name}'; known: {', '.join(available_metrics())}")


def parse_metric_names(names):
    """'fid50k,swd16k' or a list -> validated list of names (unknown names fail before any work)."""
    if isinstance(names, str):
        names = names.split(",")
    names = [n.strip() for n in names if n and n.strip()]
    for n in names:
        get_metric(n)
    return names


def prepare_metrics(names, inception=None, progress=True, lpips=None, vgg16=None):
    """Validate metric names and fetch what they need now (FID-Inception, VGG16, LPIPS weights), so that a
    training run with `--metrics fid50k` fails at start, not at its first snapshot hours later. Returns the names.
    `lpips` / `vgg16`: the files given by the user (as `calc_metrics` takes them), checked to exist."""
    names = parse_metric_names(names)
    metrics = [get_metric(n) for n in names]
    from stylegan_tf.metrics import vgg16 as vgg
    missing = []      # every file that cannot be had is tried: one line then names them all
    if inception is None and any(m.uses_inception for m in metrics):
        from stylegan_tf.metrics.inception import InceptionWeightsMissing, default_weights_path
        try:
            default_weights_path(download=True, progress=progress)
        except InceptionWeightsMissing as e:
            missing.append(e)
    lpips_files = [p for p in str(lpips).split(",") if p] if isinstance(lpips, (str, os.PathLike)) else []
    uses_lpips = lpips is None or bool(lpips_files)    # a loaded LPIPS object needs no files
    # 'vgg16.pth,heads.pth' given to --lpips brings LPIPS's trunk itself.
    needed = []
    if any(m.uses_vgg16 for m in metrics) or \
            (uses_lpips and len(lpips_files) < 2 and any(m.uses_lpips for m in metrics)):
        needed.append(("vgg16", vgg16))
    if uses_lpips and any(m.uses_lpips for m in metrics):
        needed += [("lpips", path) for path in lpips_files or [None]]
    found = []
    for kind, path in needed:
        try:
            found.append((kind, vgg.weights_path(kind, path, download=True, progress=progress), vgg.origin(kind, path)))
        except vgg.WeightsMissing as e:
            missing.append(e)
    if len(missing) == 1:
        raise missing[0]
    if missing:
        # `flag` lists the CLI flags that supply the files (FID-Inception's is --inception).
        raise vgg.WeightsMissing("; ".join(map(str, missing)),
                                 " ".join(getattr(e, "flag", "--inception") for e in missing))
    for kind, path, source in found:
        # Read now: a wrong or damaged file fails here, not after hours of training at the first snapshot.
        vgg.check_weights(kind, path, classifier=any(m.uses_vgg16 for m in metrics), source=source,
                          heads=len(lpips_files) < 2)    # 'vgg16.pth,heads.pth': the heads are in one of them
    return names


# ----------------------------------------------------------------------------------------------
# Caching keyed by content.

def cache_dir():
    """Cached statistics of real images: `<cache root>/metrics` (see `stylegan_tf.paths.cache_root`)."""
    return os.path.join(cache_root(), "metrics")


def file_digest(path):
    """sha256 of a file's bytes; memoised per process by (path, size, mtime, inode)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _FILE_DIGESTS[key] = h.hexdigest()
    return _FILE_DIGESTS[key]


def dataset_fingerprint(info, resolution=None):
    """Hash of the dataset's content, never its path: size and sha256 of the TFRecords of the level the metrics
    read (full resolution unless `resolution` names another), so a change to any of its images changes it."""
    resolution = int(info.resolution if resolution is None else resolution)
    levels = getattr(info, "levels", None) or {}
    path = levels.get(resolution) if levels else None
    if path is None or not os.path.isfile(path):
        raise MetricError(f"{info.path}: no {resolution}x{resolution} TFRecords to read")
    return hashlib.sha256(f"{os.path.getsize(path)}:{file_digest(path)}".encode()).hexdigest()[:24]


# ----------------------------------------------------------------------------------------------
# What every metric shares during one `calc_metrics` call.

class MetricContext:
    """Reals, fakes, the Inception network and the caches, shared by the metrics of one call so that
    e.g. fid50k and kid50k extract real and fake features only once."""

    def __init__(self, Gs, data_dir, mirror=False, batch_size=64, progress=True, num_images=None,
                 inception=None, inception_mode="tf1", seed=0, use_cache=True, lpips=None, vgg16=None):
        self.Gs = Gs
        self.lpips_weights = lpips
        self.vgg16_weights = vgg16
        self.data_dir = data_dir
        self.mirror = bool(mirror)
        self.batch_size = int(batch_size)
        self.progress = progress
        self.num_override = int(num_images) if num_images else None
        self.inception_weights = inception
        self.inception_mode = inception_mode
        self.seed = int(seed)
        self.use_cache = use_cache
        self._dataset = None
        self._inception = None
        self._real_features = {}
        self._fake_features = {}
        self.inception_used = False
        self.notes = []

    # -- dataset -------------------------------------------------------------------------------
    @property
    def dataset(self):
        if self._dataset is None:
            from stylegan_tf.data import open_dataset
            self._dataset = open_dataset(self.data_dir)
            g_res, g_ch = getattr(self.Gs, "resolution", None), getattr(self.Gs, "num_channels", None)
            d = self._dataset
            self._resolution = int(d.resolution)
            levels = getattr(d, "levels", None) or {}
            if g_res is not None and int(g_ch) == int(d.num_channels) and int(g_res) in levels \
                    and int(g_res) != int(d.resolution):
                # A network trained below the dataset's resolution (the demo: 32x32 on 64x64 faces) is compared with
                # the level the dataset stores for it, which is what it was trained on.
                self._resolution = int(g_res)
                self.notes.append(f"reals: the dataset's {g_res}x{g_res} level (the network generates {g_res}x{g_res}; "
                                  f"the dataset's full resolution is {d.resolution}x{d.resolution})")
            elif g_res is not None and (int(g_res) != int(d.resolution) or int(g_ch) != int(d.num_channels)):
                raise MetricError(f"{self.data_dir}: dataset is {d.resolution}x{d.resolution}x{d.num_channels} and has no "
                                  f"{g_res}x{g_res}x{g_ch} level for a network that generates that; use the dataset it "
                                  "was trained on")
        return self._dataset

    @property
    def resolution(self):
        """The resolution the metrics compare at: the network's, read from the dataset's matching level."""
        self.dataset  # noqa: B018  (opening it decides the level)
        return self._resolution

    @property
    def num_channels(self):
        return int(self.dataset.num_channels)

    def bar(self, total, desc, unit="img"):
        """A progress bar with an ETA on stderr (none without `progress`)."""
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, leave=False,
                    dynamic_ncols=True, file=sys.stderr)

    def iterate_reals(self, num=None, what="reals"):
        """uint8 NHWC batches of the first `num` reals in TFRecord order (all of them once if None).

        As NVIDIA's looping reader, a dataset with fewer than `num` images is cycled through; with
        `mirror`, each image is flipped left-right with probability 1/2 (fixed seed, so cached
        statistics are reproducible)."""
        info = self.dataset
        total = int(info.num_images) if num is None else int(num)
        if info.num_images <= 0:
            raise MetricError(f"{self.data_dir}: the dataset has no images")
        if num is not None and num > info.num_images:
            self.notes.append(f"{what}: dataset has {info.num_images} images, fewer than {num}; cycling through "
                              "them as NVIDIA's reader does (the *_full metrics use each image once)")
        rng = np.random.RandomState(self.seed + 12345)
        done = 0
        with self.bar(total, f"{what}: reals") as bar:
            while done < total:
                for batch in info.iterate_uint8(resolution=self.resolution, max_images=total - done,
                                                 batch_size=self.batch_size):
                    batch = np.asarray(batch)[:total - done]
                    if self.mirror:
                        flip = rng.rand(batch.shape[0]) < 0.5
                        batch = np.where(flip[:, None, None, None], batch[:, :, ::-1], batch)
                    done += batch.shape[0]
                    bar.update(batch.shape[0])
                    yield batch
                    if done >= total:
                        return

    def iterate_fakes(self, num, what="fakes"):
        """uint8 NHWC batches of `num` generated images: no truncation, random noise, NVIDIA's quantisation.
        z, labels and noise all come from RandomState(self.seed) (NVIDIA's noise was unseeded)."""
        from stylegan_tf.metrics.inception import quantize_images
        Gs = self.Gs
        rng = np.random.RandomState(self.seed)
        labels_all = self.dataset.labels if getattr(Gs, "label_size", 0) else None
        done = 0
        with self.bar(num, f"{what}: fakes") as bar:
            while done < num:
                n = min(self.batch_size, num - done)
                z = rng.randn(n, int(Gs.latent_size)).astype(np.float32)
                labels = None
                if labels_all is not None:
                    # Conditional networks get labels drawn from the dataset (NVIDIA's v1 passed zeros).
                    labels = np.asarray(labels_all, np.float32)[rng.randint(0, len(labels_all), size=n)]
                # Seeded noise: a metric of the same snapshot gives the same number every run.
                images = Gs.run(z, labels, truncation_psi=1.0, noise_mode="random",
                                noise_seed=int(rng.randint(2**31 - 1)))
                images = quantize_images(images)
                done += n
                bar.update(n)
                yield images

    # -- Inception -----------------------------------------------------------------------------
    def inception(self):
        self.inception_used = True
        if self._inception is None:
            from stylegan_tf.metrics import inception as inc
            w = self.inception_weights
            if hasattr(w, "features"):
                self._inception = w  # an already loaded network
            elif w is None or isinstance(w, (str, os.PathLike)):
                # Loaded once per process: training evaluates every snapshot with the same network.
                key = (os.fspath(w) if w is not None else "default:" + os.environ.get(inc.ENV_VAR, ""),
                       self.inception_mode)
                if key not in _INCEPTION_NETS:
                    if key[0] == "keras-applications":
                        _INCEPTION_NETS[key] = inc.KerasApplicationsInception()
                    else:
                        _INCEPTION_NETS[key] = inc.load_fid_inception(w, mode=self.inception_mode,
                                                                      progress=self.progress)
                self._inception = _INCEPTION_NETS[key]
            else:
                self._inception = inc.load_fid_inception(w, mode=self.inception_mode, progress=self.progress)
        return self._inception

    # -- VGG16 and LPIPS --------------------------------------------------------------------------
    def lpips(self):
        """LPIPS-VGG16 (`metrics.lpips`) from the files given or the defaults; loaded once per process."""
        from stylegan_tf.metrics import lpips as lp
        from stylegan_tf.metrics import vgg16 as vgg
        if hasattr(self.lpips_weights, "distances"):
            return self.lpips_weights
        key = ("lpips", self.lpips_weights, self.vgg16_weights,
               tuple(os.environ.get(spec["env"], "") for spec in vgg.FILES.values()))
        if key not in _VGG_NETS:
            _VGG_NETS[key] = lp.load_lpips(self.lpips_weights, self.vgg16_weights, progress=self.progress)
        return _VGG_NETS[key]

    def vgg16(self):
        """(torchvision's VGG16 with fc1/fc2, a content key of its file) for precision and recall."""
        from stylegan_tf.metrics import vgg16 as vgg
        if hasattr(self.vgg16_weights, "fc2_features"):
            return self.vgg16_weights, getattr(self.vgg16_weights, "cache_key", "vgg16-object")
        path = vgg.weights_path("vgg16", self.vgg16_weights, progress=self.progress)
        key = ("vgg16", os.path.abspath(path))
        if key not in _VGG_NETS:
            # The file's hash keys the cache of real features: other weights can never reuse them.
            _VGG_NETS[key] = (vgg.VGG16.from_file(path, classifier=True), "vgg16-" + file_digest(path)[:16])
        return _VGG_NETS[key]

    @property
    def comparable(self):
        """False when the metric just evaluated used keras.applications' InceptionV3, not FID-Inception."""
        return not (self.inception_used and getattr(self._inception, "mode", "") == "keras-applications")

    def _features(self, batches):
        net = self.inception()
        return np.concatenate([net.features(b, batch_size=self.batch_size) for b in batches], axis=0)

    def real_features(self, num=None):
        if num not in self._real_features:
            self._real_features[num] = self._features(self.iterate_reals(num, "inception"))
        return self._real_features[num]

    def fake_features(self, num):
        if num not in self._fake_features:
            self._fake_features[num] = self._features(self.iterate_fakes(num, "inception"))
        return self._fake_features[num]

    # -- disk cache of real statistics ----------------------------------------------------------
    def cache_key(self, kind, options, detector=None):
        """`detector`: the key of the feature network when it is not FID-Inception (precision/recall's VGG16)."""
        parts = dict(version=CACHE_VERSION, kind=kind, dataset=dataset_fingerprint(self.dataset, self.resolution),
                     mirror=self.mirror, seed=self.seed if self.mirror else None,
                     inception=detector or self.inception().cache_key, **options)
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]

    def cache_path(self, kind, options, detector=None):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(getattr(self.dataset, "name", "") or "dataset"))
        return os.path.join(cache_dir(), f"{self.cache_key(kind, options, detector)}-{kind}-{name}.npz")

    def cached(self, kind, options, compute, detector=None):
        """`compute()` -> dict of arrays, stored as npz under a key of dataset content, options and weights
        (`detector`: the feature network's key, FID-Inception's when None)."""
        if not self.use_cache:
            return compute()
        path = self.cache_path(kind, options, detector)
        if os.path.isfile(path):
            try:
                with np.load(path, allow_pickle=False) as f:
                    return {k: f[k] for k in f.files}
            except (OSError, ValueError):
                pass  # unreadable (e.g. a disk-full write): recompute and overwrite
        result = compute()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **result)
        return result


# ----------------------------------------------------------------------------------------------

def _load(network):
    if hasattr(network, "Gs"):
        return network, None
    from stylegan_tf.network_io import open_network
    path = os.fspath(network)
    return open_network(path, "--network", MetricError), path


def calc_metrics(network, metrics, data_dir, mirror=False, snapshot=None, batch_size=64, report_dir=None,
                 progress=True, num_images=None, inception=None, inception_mode="tf1", seed=0, use_cache=True,
                 on_result=None, lpips=None, vgg16=None):
    """Evaluate `metrics` (names or a comma-separated string) for `network` (a path or an object with .Gs).

    Returns a list of dicts {"results": {...}, "metric": name, "total_time": s, "snapshot": ...,
    "timestamp": t}; with `report_dir`, each is also appended as a JSON line to
    `report_dir/metric-<name>.jsonl` (see `write_report`: a folder that cannot be written does not lose
    the result). `on_result(record)` is called as soon as each metric is computed, before its report is
    written and before the next metric starts: a CLI prints there, so a later failure loses nothing.
    `num_images` overrides every metric's image count (quick looks; such numbers are not comparable with
    published ones). `inception`: weights path / dict / loaded network / "keras-applications" (not
    comparable) / None for the default download. `lpips` (the LPIPS heads' file, or 'vgg16.pth,heads.pth', or a
    loaded `metrics.lpips.LPIPS`) and `vgg16` (torchvision's VGG16 file): None for the defaults
    (`metrics.vgg16.weights_path`).
    """
    names = parse_metric_names(metrics)
    nets, path = _load(network)
    if snapshot is None and path is not None:
        snapshot = os.path.basename(path)
    ctx = MetricContext(nets.Gs, data_dir, mirror=mirror, batch_size=batch_size, progress=progress,
                        num_images=num_images, inception=inception, inception_mode=inception_mode, seed=seed,
                        use_cache=use_cache, lpips=lpips, vgg16=vgg16)
    out = []
    for name in names:
        metric = get_metric(name)
        start = time.time()
        ctx.inception_used = False
        results = {k: float(v) for k, v in metric.evaluate(ctx).items()}
        if not ctx.comparable:
            # Say it in every key and file name: these numbers must never be mistaken for real FIDs.
            results = {k + NONCOMPARABLE_SUFFIX: v for k, v in results.items()}
            name = name + NONCOMPARABLE_SUFFIX
        record = dict(results=results, metric=name, total_time=time.time() - start, snapshot=snapshot,
                      timestamp=time.time())
        out.append(record)
        if on_result is not None:
            on_result(record)
        if report_dir is not None:
            write_report(report_dir, record)
    for note in dict.fromkeys(ctx.notes):
        print(f"note: {note}", file=sys.stderr)
    return out


def fallback_report_dir():
    """Where reports go when their folder cannot be written: `<cache root>/metric-reports`."""
    return os.path.join(cache_root(), "metric-reports")


def write_report(report_dir, record):
    """Append `record` to `report_dir/metric-<name>.jsonl`; returns the path written, or None.

    The result is already computed (often hours of work), so a folder that cannot be written (read-only,
    full, gone) must not lose it: the line then goes to `fallback_report_dir()`, with `report_dir` recorded
    in it, and a note on stderr says where. If that fails too, the note says so; nothing is raised.
    """
    name = f"metric-{record['metric']}.jsonl"
    path = os.path.join(report_dir, name)
    try:
        append_jsonl(path, record)
        return path
    except OSError as e:
        reason = e.strerror or str(e)
    fallback = os.path.join(fallback_report_dir(), name)
    if os.path.abspath(fallback) != os.path.abspath(path):
        try:
            append_jsonl(fallback, dict(record, report_dir=os.path.abspath(report_dir)))
            print(f"note: cannot write {path} ({reason}); the {record['metric']} report went to {fallback}",
                  file=sys.stderr)
            return fallback
        except OSError as e2:
            reason = f"{reason}; {fallback}: {e2.strerror or e2}"
    print(f"warning: cannot write {path} ({reason}); the {record['metric']} result was not saved to a file",
          file=sys.stderr)
    return None


def append_jsonl(path, record):
    """Append one JSON line, whole or not at all (a killed run must not leave half a line)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)  # one O_APPEND write: atomic for lines of this size on local file systems
    finally:
        os.close(fd)


def format_results(record):
    """One human-readable line, NVIDIA-style: '<snapshot> time 1m 23s fid50k 12.3456'."""
    secs = int(round(record["total_time"]))
    t = f"{secs // 3600}h {secs // 60 % 60:02d}m" if secs >= 3600 else f"{secs // 60}m {secs % 60:02d}s"
    vals = " ".join(f"{k} {v:.4f}" for k, v in record["results"].items())
    return f"{str(record.get('snapshot') or '')[-30:]:<30} time {t:<8} {vals}"
