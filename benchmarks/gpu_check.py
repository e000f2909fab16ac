"""The GPU check: networks against the official fixtures, `fit` on JAX, and img/s at 256² and 1024².

Runs on Keras' JAX backend with or without TensorFlow installed (`benchmarks/gpu_check.sh` installs the package
from carried wheels on a GPU machine that has JAX and no TensorFlow). Prints one line per measurement and a JSON
summary; `--cpu` runs the same code paths at tiny sizes (what CI runs, tests/test_jax.py).

    KERAS_BACKEND=jax python benchmarks/gpu_check.py [--cpu] [--budget-s 330] [--json out.json]

Measurements: inference (Gs mapping + synthesis, random noise, no truncation) and one full training iteration
(Gs EMA, D step with R1 every step, G step, style mixing 0.9, random noise; the official StyleGAN config at the
full resolution, level 0), each in fp32 and in Keras' `mixed_bfloat16` policy. img/s are timed on device arrays
(`block_until_ready`) after a compile-and-warm-up call; FLOPs come from XLA's cost analysis of the compiled
step; "% of peak" is against the GPU's dense peak for the precision (bf16 tensor cores, or TF32 for fp32, the
default matmul precision of XLA on Hopper). Peak memory is JAX's `peak_bytes_in_use` since the process started
(cases run from the smallest footprint up, so each peak is that case's unless an earlier one was larger).
"""
import argparse
import gc
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Dense peak TFLOP/s (bf16 tensor core, TF32 tensor core), NVIDIA's datasheets (SXM parts, no sparsity).
PEAKS = {"H100": (989.0, 494.0), "H200": (989.0, 494.0), "A100": (312.0, 156.0)}
T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def device_info():
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", str(d))
    peak = next((v for k, v in PEAKS.items() if k in kind), None)
    return d, kind, peak


def peak_mem_gb():
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use", 0) / 2 ** 30


def set_policy(precision):
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")


def make_nets(resolution, small):
    from stylegan_tf.networks import Discriminator, Generator
    kw = dict(fmap_base=64, fmap_max=32, latent_size=32, dlatent_size=32, mapping_fmaps=32) if small else {}
    G = Generator(resolution=resolution, num_channels=3, **kw)
    dkw = {k: kw[k] for k in ("fmap_base", "fmap_max") if k in kw}
    D = Discriminator(resolution=resolution, num_channels=3, **dkw)
    return G, D


# ------------------------------------------------------------------ 1. parity with NVIDIA's own numbers
def check_fixtures():
    """Our networks on the official pickles give the fixture arrays (as tests/test_official_pickle.py)."""
    folder = os.path.join(REPO, "tests", "fixtures", "official-stylegan")
    # XLA's default on NVIDIA GPUs multiplies fp32 matrices in TF32 (10-bit mantissa): ~3e-3 off the fixtures.
    # The parity check asks for true fp32, as the fixtures were computed (training/inference may use TF32).
    with jax.default_matmul_precision("highest"):
        return _check_fixtures(folder)


def _check_fixtures(folder):
    import stylegan_tf
    worst = {}
    for name in ("official-r32", "official-r16-cond"):
        nets = stylegan_tf.load_network(os.path.join(folder, f"{name}.pkl"))
        e = dict(np.load(os.path.join(folder, f"{name}-expected.npz")))
        z, labels = e["z"], e.get("labels")
        nhwc = (lambda a: a.transpose(0, 2, 3, 1))
        got = {"dlatents": (nets.Gs.map_latents(z, labels), e["dlatents"]),
               "img": (nets.Gs.run(z, labels), nhwc(e["img"])),
               "img_trunc": (nets.Gs.run(z, labels, truncation_psi=0.7, truncation_cutoff=8), nhwc(e["img_trunc"])),
               "d_scores": (nets.D.run(nhwc(e["img"]), labels), e["d_scores"])}
        for key, (ours, ref) in got.items():
            err = float(np.abs(ours - ref).max() / np.abs(ref).max())
            worst[f"{name}/{key}"] = err
    bad = {k: v for k, v in worst.items() if not v <= 1e-4}
    log(f"fixture parity: max relative error {max(worst.values()):.2e} over {len(worst)} arrays"
        + (f"  FAILED {bad}" if bad else "  OK"))
    return {"fixture_max_rel_err": max(worst.values()), "fixture_ok": not bad}


# ------------------------------------------------------------------ 2. inference
def bench_inference(resolution, precision, batch, iters, small, noise_mode="random"):
    from stylegan_tf.networks.inference import level_for_lod
    set_policy(precision)
    G, _ = make_nets(resolution, small)
    tv = [v.value for v in G.trainable_variables]
    ntv = [v.value for v in G.non_trainable_variables]
    level, fade = level_for_lod(G._lod_value(None), G.max_level)

    def fwd(tv, ntv, z, key):
        # The jitted call sees the weights as arguments (no baked constants), as `fit` and `run` do; like `run`
        # (generate.py, the metrics) it fixes the level and fade from the current lod when it traces, so at lod 0
        # only the last toRGB runs (a graph with lod as a tensor computes every level's: -17 % at 1024², H100).
        with keras.StatelessScope(state_mapping=list(zip(G.trainable_variables + G.non_trainable_variables,
                                                          tv + ntv))):
            w = G.mapping(z, None)
            return G.synthesis(w, lod=0.0, level=level, fade=fade, noise_mode=noise_mode, seed=key)

    z = jax.random.normal(jax.random.PRNGKey(0), (batch, G.latent_size))
    key = jax.random.PRNGKey(1)
    lowered = jax.jit(fwd).lower(tv, ntv, z, key)
    flops = _flops(lowered)
    compiled = lowered.compile()
    compiled(tv, ntv, z, key).block_until_ready()
    t = time.perf_counter()
    for i in range(iters):
        out = compiled(tv, ntv, z, jax.random.fold_in(key, i))
    out.block_until_ready()
    dt = (time.perf_counter() - t) / iters
    return _result("inference" if noise_mode == "random" else f"inference ({noise_mode} noise)", resolution,
                   precision, batch, dt, flops, out.dtype)


# ------------------------------------------------------------------ 3. training
def _model(resolution, batch, small, mixing=0.9):
    from stylegan_tf.training.model import StyleGAN
    G, D = make_nets(resolution, small)
    model = StyleGAN(G, D, seed=1000)
    model.ema_update_now(0.0)

    def adam():
        return keras.optimizers.Adam(0.0015 if resolution < 512 else 0.002, beta_1=0.0, beta_2=0.99, epsilon=1e-8)
    model.compile(g_optimizer=adam(), d_optimizer=adam(), loss="logistic", loss_kwargs={"gamma": 10.0})
    model.configure_phase(level=0, global_batch=batch)
    return model


def _batches(resolution, batch, start=0):
    reals = np.random.default_rng(0).uniform(-1, 1, (batch, resolution, resolution, 3)).astype(np.float32)
    labels = np.zeros((batch, 0), np.float32)
    step = start
    while True:
        yield reals, labels, np.full((batch,), step, np.int64)
        step += 1


def bench_training(resolution, precision, batch, iters, small):
    """The jitted train_step that `fit` runs (same function, same donation), timed on device arrays."""
    set_policy(precision)
    model = _model(resolution, batch, small)
    state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True, optimizer_variables=True,
                                 metrics_variables=True)
    reals, labels, step = next(_batches(resolution, batch))
    data = (jax.device_put(reals), jax.device_put(labels), jax.device_put(step.astype(np.int32)))
    lowered = jax.jit(model.train_step, donate_argnums=0).lower(state, data)
    flops = _flops(lowered)
    compiled = lowered.compile()
    logs, state = compiled(state, data)
    jax.block_until_ready(state)
    t = time.perf_counter()
    for i in range(iters):
        data = (data[0], data[1], data[2] + 1)
        logs, state = compiled(state, data)
    jax.block_until_ready(state)
    dt = (time.perf_counter() - t) / iters
    r = _result("train", resolution, precision, batch, dt, flops, None)
    r["D_loss"] = float(logs["D_loss"])
    r["nonfinite_skips"] = float(logs["nonfinite_skips"])
    return r


def fit_run(resolution, precision, batch, steps, small):
    """`model.fit` for `steps` iterations; returns img/s of the steps after the first (compile) and the logs."""
    set_policy(precision)
    model = _model(resolution, batch, small)
    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, b, logs=None):
            times.append(time.perf_counter())

    hist = model.fit(_batches(resolution, batch), epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    logs = {k: float(v[-1]) for k, v in hist.history.items()}
    finite = all(np.isfinite(v) for v in logs.values())
    ips = batch * (len(times) - 2) / (times[-1] - times[1]) if len(times) > 2 else float("nan")
    gflop = GFLOP_PER_IMAGE.get(("fit", resolution)) if not small else None
    _, kind, peak = device_info()
    pct = 100.0 * ips * gflop / 1e3 / peak[0 if precision == "bf16" else 1] if (gflop and peak) else None
    log(f"fit {resolution}x{resolution} {precision} batch {batch}: {steps} steps, {ips:.1f} img/s after compile"
        + (f" ({pct:.1f}% of {kind} peak)" if pct else "") + ", "
        f"logs {json.dumps({k: round(v, 4) for k, v in logs.items()})} {'finite' if finite else 'NOT FINITE'}")
    return {"case": "fit", "resolution": resolution, "precision": precision, "batch": batch, "steps": steps,
            "img_per_s": ips, "pct_of_peak": pct, "logs": logs, "finite": finite, "peak_mem_gb": peak_mem_gb()}


def _flops(lowered):
    """FLOPs of one call from XLA's cost analysis of the lowered HLO, or None (then `_result` uses the table
    below). Compiled for a GPU, convolutions become cuDNN custom calls that the analysis does not count, and on
    the GPU machine (jax 0.11.2) the lowered module's analysis came back empty."""
    try:
        cost = lowered.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float((cost or {}).get("flops", 0.0)) or None
    except Exception:       # cost analysis is best-effort reporting
        return None


# GFLOP per image of the official 256² and 1024² configs (fmap_base 8192, style mixing, R1 every step, R1 input
# gradients rematerialised), from XLA's cost analysis of the same functions lowered on the CPU (jax 0.10.2,
# batch 4): the arithmetic is the model's, whatever device runs it.
GFLOP_PER_IMAGE = {("inference", 256): 44.75, ("inference", 1024): 64.44, ("train", 256): 757.9,
                   ("train", 1024): 1080.3, ("fit", 256): 757.9, ("fit", 1024): 1080.3}


def _result(case, resolution, precision, batch, dt, flops, dtype):
    _, kind, peak = device_info()
    if not flops and (case.split(" ")[0], resolution) in GFLOP_PER_IMAGE and resolution >= 256:
        flops = GFLOP_PER_IMAGE[case.split(" ")[0], resolution] * 1e9 * batch
    ips = batch / dt
    tflops = flops / dt / 1e12 if flops else None
    pct = 100.0 * tflops / peak[0 if precision == "bf16" else 1] if (tflops and peak) else None
    r = {"case": case, "resolution": resolution, "precision": precision, "batch": batch, "img_per_s": ips,
         "ms_per_batch": dt * 1e3, "tflop_per_s": tflops, "pct_of_peak": pct, "peak_mem_gb": peak_mem_gb(),
         "gflop_per_img": flops / batch / 1e9 if flops else None}
    log(f"{case:9s} {resolution:4d}x{resolution:<4d} {precision:4s} batch {batch:3d}: {ips:9.1f} img/s  "
        f"{dt * 1e3:8.1f} ms/batch  "
        + (f"{tflops:6.1f} TFLOP/s " if tflops else "")
        + (f"({pct:4.1f}% of {kind} peak) " if pct else "")
        + f"peak mem {r['peak_mem_gb']:.1f} GiB")
    return r


def _run_case(what, res, prec, batch, n, small):
    if what == "train-noremat":
        from stylegan_tf.training import jax_step
        saved, jax_step.REMAT_FROM_RESOLUTION = jax_step.REMAT_FROM_RESOLUTION, 1 << 30
        try:
            r = bench_training(res, prec, batch, n, small)
        finally:
            jax_step.REMAT_FROM_RESOLUTION = saved
        r["case"] = "train (no remat)"
        return r
    if what == "inf-const":
        return bench_inference(res, prec, batch, n, small, noise_mode="const")
    return {"inf": bench_inference, "train": bench_training, "fit": fit_run}[what](res, prec, batch, n, small)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true", help="tiny sizes: exercises every path in seconds (CI)")
    p.add_argument("--budget-s", type=float, default=330.0, help="skip the remaining cases after this many seconds")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--only", default=None,
                   help="comma-separated cases to run, as WHAT-RES-PREC (e.g. inf-256-bf16,fit-256-bf16)")
    a = p.parse_args(argv)
    if keras.backend.backend() != "jax":
        sys.exit("gpu_check: run with KERAS_BACKEND=jax")
    dev, kind, _ = device_info()
    try:
        import tensorflow  # noqa: F401
        has_tf = True
    except ImportError:
        has_tf = False
    log(f"device {kind} ({dev.platform}), jax {jax.__version__}, keras {keras.__version__}, TensorFlow "
        f"{'installed' if has_tf else 'not installed'}")
    results = {"device": kind, "jax": jax.__version__, "keras": keras.__version__, "tensorflow": has_tf, "cases": []}
    results.update(check_fixtures())
    if a.cpu:
        cases = [("inf", 8, "fp32", 4, 2), ("train", 8, "bf16", 4, 2), ("fit", 8, "fp32", 4, 3)]
    else:
        # Highest priority first (the targets); a training case that fails (out of memory) is retried once at
        # half the batch.
        cases = [("inf", 1024, "bf16", 64, 10), ("train", 1024, "bf16", 32, 8), ("inf", 1024, "fp32", 64, 5),
                 ("inf", 256, "bf16", 128, 20), ("inf", 256, "fp32", 128, 10), ("fit", 256, "bf16", 32, 300),
                 ("train", 256, "fp32", 32, 10), ("fit", 1024, "bf16", 32, 12), ("train", 1024, "fp32", 16, 4),
                 ("train-noremat", 256, "bf16", 32, 10), ("inf-const", 1024, "bf16", 64, 10)]
    if a.only:
        wanted = a.only.split(",")
        cases = [c for c in cases if f"{c[0]}-{c[1]}-{c[2]}" in wanted]
    for what, res, prec, batch, n in cases:
        if time.time() - T0 > a.budget_s:
            log(f"budget: skipping {what} {res} {prec}")
            results["cases"].append({"case": what, "resolution": res, "precision": prec, "skipped": "budget"})
            continue
        try:
            results["cases"].append(_run_case(what, res, prec, batch, n, a.cpu))
        except Exception as e:   # report and go on: one failure (OOM) must not hide the other numbers
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            log(f"{what} {res} {prec} batch {batch} FAILED: {type(e).__name__}: {msg}")
            results["cases"].append({"case": what, "resolution": res, "precision": prec, "batch": batch,
                                     "error": f"{type(e).__name__}: {msg}"})
            if what.startswith("train") and batch > 4 and time.time() - T0 < a.budget_s:
                gc.collect()
                jax.clear_caches()
                try:
                    results["cases"].append(_run_case(what, res, prec, batch // 2, n, a.cpu))
                except Exception as e2:
                    msg = (str(e2).strip().splitlines() or [type(e2).__name__])[0][:300]
                    log(f"{what} {res} {prec} batch {batch // 2} FAILED: {msg}")
        gc.collect()
        jax.clear_caches()
    set_policy("fp32")
    print("RESULTS " + json.dumps(results), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    ok = results["fixture_ok"] and all("error" not in c and c.get("finite", True) for c in results["cases"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
