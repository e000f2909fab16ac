"""Ours against a PyTorch StyleGAN on the same GPU: generator inference and training-step img/s, side by side.

The peer is rosinality/style-based-gan-pytorch (pure PyTorch, no custom CUDA ops), run from its own checkout:
its `model.py` builds the networks, and the training step follows its `train.py` (`--loss r1 --mixing`: R1 every
step, γ 10, style mixing 0.9, Adam β (0, 0.99), the mapping at 0.01 × lr, a running-average generator). Its
code is imported from that checkout, never copied here. Ours is timed as `benchmarks/gpu_check.py` times it
(the same functions: Gs mapping + synthesis with random noise; the jitted `train_step` that `fit` runs, with
Gs EMA, R1 every step, style mixing 0.9, random noise), on Keras' JAX backend.

    bash benchmarks/gpu_peer.sh                        # on the GPU machine (installs the carried wheels)
    python benchmarks/gpu_peer.py --cpu               # the same code paths at 8²/16², minibatch 2
    bash benchmarks/gpu_peer.sh --journey              # the demo and compare_archs on the GPU (see --journey)

Each side runs in a process of its own, one after the other (the peer first), so that neither framework's
memory pool starves the other; `--peer-python` (or PEER_PYTHON) names the Python that has PyTorch when it is
not this one. Prints one line per measurement, then a table of ours, the peer's and the ratio, and what differs
between the two networks; `--json` writes everything. The peer has no mixed-precision option: its bf16 rows
run its code under `torch.autocast(bfloat16)`, which this script adds. fp32 on a GPU: PyTorch's defaults
(cuDNN convolutions in TF32, matrix products in fp32), XLA's default on ours (TF32 for both).
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEER_URL = "https://github.com/rosinality/style-based-gan-pytorch"
CARRY_DIR = os.path.join(REPO, ".gpu_peer")            # ignored; carried to the GPU machine as one path
DEFAULT_PEER_DIR = os.path.join(CARRY_DIR, "style-based-gan-pytorch")
README_SWD = 17.7       # the README picture's run (SWD of its final Gs)
T0 = time.time()

# (side, what, resolution, precision, batch, timed iterations, rough seconds on an H100 incl. compilation: a
# guess, from gpu_check's compile times), highest priority first: a case starts only while its side's budget
# still holds its estimate. fp32 first (the peer's own precision), then bf16; 1024² training last (ours is in
# docs/performance.md already, and its compilation takes ~3 minutes).
GPU_CASES = [
    ("peer", "inf", 256, "fp32", 128, 10, 10), ("peer", "inf", 1024, "fp32", 64, 5, 15),
    ("peer", "train", 256, "fp32", 32, 8, 15), ("peer", "inf", 256, "bf16", 128, 10, 10),
    ("peer", "inf", 1024, "bf16", 64, 5, 15), ("peer", "train", 1024, "fp32", 32, 4, 40),
    ("ours", "inf", 256, "fp32", 128, 10, 30), ("ours", "inf", 1024, "fp32", 64, 5, 40),
    ("ours", "train", 256, "fp32", 32, 10, 75), ("ours", "inf", 256, "bf16", 128, 20, 30),
    ("ours", "inf", 1024, "bf16", 64, 10, 40), ("ours", "train", 256, "bf16", 32, 10, 75),
    ("ours", "train", 1024, "bf16", 32, 8, 200), ("ours", "train", 1024, "fp32", 32, 4, 200),
]
# --cpu: the same code paths at tiny sizes (the full network widths, so both sides build the same config).
CPU_CASES = [
    ("peer", "inf", 8, "fp32", 2, 2, 0), ("peer", "inf", 16, "fp32", 2, 2, 0), ("peer", "inf", 8, "bf16", 2, 2, 0),
    ("peer", "train", 8, "fp32", 2, 2, 0),
    ("ours", "inf", 8, "fp32", 2, 2, 0), ("ours", "inf", 16, "fp32", 2, 2, 0), ("ours", "inf", 8, "bf16", 2, 2, 0),
    ("ours", "train", 8, "fp32", 2, 2, 0),
]

# What differs between the two at the same resolution (read from the peer's model.py and train.py).
DIFFERENCES = [
    "same: 512-d z and w, 8 mapping layers of 512, feature maps min(8192 / 2^stage, 512) (16 at 1024²), "
    "const 4x4 input, AdaIN, fused up/down-convs from 128² up, blur, equalized lr, lrelu 0.2, "
    "non-saturating logistic loss, R1 γ 10 every step, style mixing 0.9, Adam β (0, 0.99), mapping lr x 0.01",
    "peer G: one noise map per resolution, shared by its two layers (ours: one per layer, as the original)",
    "peer G: no bias on the first 4x4 layer; no dlatent average tracked while training (no truncation)",
    "peer D: minibatch stddev over the whole minibatch in one group (ours: groups of 4)",
    "peer D: last block ends in a 4x4 valid conv then a linear 512 -> 1 (ours: dense 8192 -> 512 -> 1: the "
    "same arithmetic)",
    "peer: equalized lr by forward pre-hooks (the scaled weight is recomputed at every call); the mapping's "
    "0.01 lr as an optimizer parameter group (ours: a runtime weight multiplier)",
    "peer: eager PyTorch as its train.py runs it (no torch.compile, cudnn.benchmark off); one GPU, no "
    "DataParallel wrapper; Gs EMA per parameter at decay 0.999 (ours: half-life 10 kimg)",
    "peer: no mixed-precision option; its bf16 inference rows are its code under torch.autocast(bfloat16), added "
    "here (ours: Keras' mixed_bfloat16 policy, fp32 variables); its training cannot run so: its blur's custom "
    "backward convolves bf16 gradients with an fp32 kernel (a dtype error), so it trains in fp32 only",
    "peer training step: D's real pass backward, then R1's grad with create_graph and its backward (train.py's "
    "order); reals are random tensors on the device on both sides (no data loading timed)",
    "inference: both sides mapping + synthesis, random noise, no truncation, full resolution (no fade)",
]


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def peer_problem(peer_dir):
    """None if `peer_dir` holds the peer's checkout, else the one line that says how to get it."""
    model = os.path.join(peer_dir, "model.py")
    ok = os.path.isfile(model)
    if ok:
        with open(model, encoding="utf-8", errors="replace") as f:
            ok = "class StyledGenerator" in f.read()
    if ok:
        return None
    return (f"gpu_peer: no style-based-gan-pytorch checkout at {peer_dir}: get it with "
            f"`git clone {PEER_URL} {peer_dir}` (or point PEER_DIR / --peer-dir at one)")


# ------------------------------------------------------------------ the peer's side (PyTorch)
def _peer_module(peer_dir):
    """The peer's model.py, imported from its checkout under a name of its own."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("peer_stylegan_model", os.path.join(peer_dir, "model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class PeerBench:
    def __init__(self, peer_dir, cpu):
        import torch
        self.torch = torch
        self.P = _peer_module(peer_dir)
        self.dev = torch.device("cuda" if (torch.cuda.is_available() and not cpu) else "cpu")
        torch.manual_seed(0)
        random.seed(0)
        if self.dev.type == "cuda":
            self.kind = torch.cuda.get_device_name(0)
        else:
            self.kind = "cpu"

    def info(self):
        t = self.torch
        return {"torch": t.__version__, "device": self.kind,
                "cudnn_allow_tf32": bool(t.backends.cudnn.allow_tf32),
                "matmul_allow_tf32": bool(t.backends.cuda.matmul.allow_tf32),
                "cudnn_benchmark": bool(t.backends.cudnn.benchmark)}

    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    def reset_mem(self):
        if self.dev.type == "cuda":
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def peak_mem_gb(self):
        return self.torch.cuda.max_memory_allocated() / 2 ** 30 if self.dev.type == "cuda" else 0.0

    def autocast(self, precision):
        import contextlib
        if precision == "bf16":
            return self.torch.autocast(self.dev.type, dtype=self.torch.bfloat16)
        return contextlib.nullcontext()

    def generator(self):
        return self.P.StyledGenerator(512, n_mlp=8).to(self.dev)

    def inference(self, resolution, precision, batch, iters):
        torch = self.torch
        G = self.generator().eval()
        step = int(math.log2(resolution)) - 2
        z = torch.randn(batch, 512, device=self.dev)
        with torch.no_grad(), self.autocast(precision):
            for _ in range(2):   # warm-up (cuDNN's algorithm choice, the allocator)
                out = G(z, step=step, alpha=1)
            self.sync()
            t = time.perf_counter()
            for _ in range(iters):
                out = G(torch.randn(batch, 512, device=self.dev), step=step, alpha=1)
            self.sync()
        dt = (time.perf_counter() - t) / iters
        assert tuple(out.shape) == (batch, 3, resolution, resolution), out.shape
        return self._result("inference", resolution, precision, batch, dt, finite=bool(torch.isfinite(out).all()))

    def training(self, resolution, precision, batch, iters):
        """One iteration of its train.py (`--loss r1 --mixing`) at a fixed resolution (alpha 1), reals on device."""
        torch = self.torch
        F = torch.nn.functional
        G, G_ema = self.generator(), self.generator().eval()
        D = self.P.Discriminator(from_rgb_activate=True).to(self.dev)   # its train.py's default
        G_ema.load_state_dict(G.state_dict())
        lr = 0.002 if resolution <= 512 else 0.003     # its --sched values (256: 0.002, 1024: 0.003)
        g_opt = torch.optim.Adam(G.generator.parameters(), lr=lr, betas=(0.0, 0.99))
        g_opt.add_param_group({"params": G.style.parameters(), "lr": lr * 0.01, "mult": 0.01})
        d_opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.0, 0.99))
        step = int(math.log2(resolution)) - 2
        reals = torch.rand(batch, 3, resolution, resolution, device=self.dev) * 2 - 1
        ema_pairs = list(zip(G_ema.parameters(), G.parameters()))
        rng = random.Random(0)

        def grad_on(net, flag):
            for p in net.parameters():
                p.requires_grad = flag

        def latents():
            if rng.random() < 0.9:
                return list(torch.randn(2, batch, 512, device=self.dev).unbind(0))
            return torch.randn(batch, 512, device=self.dev)

        def iteration():
            stats = {}
            grad_on(G, False)
            grad_on(D, True)
            D.zero_grad()
            real = reals.detach().requires_grad_(True)
            with self.autocast(precision):
                real_scores = D(real, step=step, alpha=1)
                real_loss = F.softplus(-real_scores).mean()
            real_loss.backward(retain_graph=True)
            (g,) = torch.autograd.grad(real_scores.float().sum(), real, create_graph=True)
            r1 = 5.0 * g.float().reshape(batch, -1).pow(2).sum(1).mean()
            r1.backward()
            with self.autocast(precision):
                fake_loss = F.softplus(D(G(latents(), step=step, alpha=1), step=step, alpha=1)).mean()
            fake_loss.backward()
            d_opt.step()
            G.zero_grad()
            grad_on(G, True)
            grad_on(D, False)
            with self.autocast(precision):
                g_loss = F.softplus(-D(G(latents(), step=step, alpha=1), step=step, alpha=1)).mean()
            g_loss.backward()
            g_opt.step()
            with torch.no_grad():
                for e, p in ema_pairs:
                    e.mul_(0.999).add_(p.detach(), alpha=0.001)
            stats.update(D_loss=real_loss + fake_loss, G_loss=g_loss, r1=r1)
            return stats

        iteration()     # warm-up
        self.sync()
        t = time.perf_counter()
        for _ in range(iters):
            stats = iteration()
        self.sync()
        dt = (time.perf_counter() - t) / iters
        logs = {k: float(v.detach()) for k, v in stats.items()}
        r = self._result("train", resolution, precision, batch, dt, finite=all(math.isfinite(v) for v in logs.values()))
        r["logs"] = logs
        return r

    def _result(self, case, resolution, precision, batch, dt, finite):
        r = {"side": "peer", "case": case, "resolution": resolution, "precision": precision, "batch": batch,
             "img_per_s": batch / dt, "ms_per_batch": dt * 1e3, "peak_mem_gb": self.peak_mem_gb(), "finite": finite}
        log(f"peer {case:9s} {resolution:4d}x{resolution:<4d} {precision:4s} batch {batch:3d}: {r['img_per_s']:9.1f} "
            f"img/s  {dt * 1e3:8.1f} ms/batch  peak mem {r['peak_mem_gb']:.1f} GiB{'' if finite else '  NOT FINITE'}")
        return r

    def run_case(self, what, res, prec, batch, n):
        self.reset_mem()
        return (self.inference if what == "inf" else self.training)(res, prec, batch, n)

    def is_oom(self, e):
        return isinstance(e, self.torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()

    def cleanup(self):
        import gc
        gc.collect()
        self.reset_mem()


# ------------------------------------------------------------------ our side (Keras on JAX)
class OursBench:
    def __init__(self, cpu):
        sys.path.insert(0, HERE)
        import gpu_check          # sets KERAS_BACKEND=jax before Keras is imported
        import jax
        import keras
        if keras.backend.backend() != "jax":
            raise SystemExit("gpu_peer: our side runs on Keras' JAX backend (KERAS_BACKEND=jax)")
        self.gc, self.jax, self.keras = gpu_check, jax, keras
        self.kind = gpu_check.device_info()[1]

    def info(self):
        try:
            import tensorflow  # noqa: F401
            has_tf = True
        except ImportError:
            has_tf = False
        import stylegan_tf
        return {"jax": self.jax.__version__, "keras": self.keras.__version__, "device": self.kind,
                "tensorflow": has_tf, "stylegan_tf": os.path.dirname(stylegan_tf.__file__)}

    def run_case(self, what, res, prec, batch, n):
        fn = self.gc.bench_inference if what == "inf" else self.gc.bench_training
        r = fn(res, prec, batch, n, False)
        r["side"] = "ours"
        r["case"] = "inference" if what == "inf" else "train"
        r.setdefault("finite", all(math.isfinite(r.get(k, 0.0)) for k in ("D_loss",)))
        return r

    def is_oom(self, e):
        return "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower()

    def cleanup(self):
        import gc
        gc.collect()
        self.jax.clear_caches()
        self.gc.set_policy("fp32")


def run_side(side, cases, budget_s, bench):
    """Run this side's cases in this process with `bench` (PeerBench or OursBench); returns {"info", "cases"}."""
    info = bench.info()
    log(f"{side}: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    out = []
    start = time.time()
    for _, what, res, prec, batch, n, est in cases:
        left = budget_s - (time.time() - start)
        if left < est or left <= 0:
            log(f"{side}: budget: skipping {what} {res} {prec} ({left:.0f} s left, ~{est} s needed)")
            out.append({"side": side, "case": what, "resolution": res, "precision": prec, "skipped": "budget"})
            continue
        while True:
            error = None
            try:
                out.append(bench.run_case(what, res, prec, batch, n))
            except Exception as e:   # report and go on: one failure (OOM) must not hide the other numbers
                msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                error, oom = f"{type(e).__name__}: {msg}", bench.is_oom(e)
            if error is None:
                break
            # Out of the except block, so that the failed case's tensors (held by the traceback) can be freed.
            log(f"{side} {what} {res} {prec} batch {batch} FAILED: {error}")
            out.append({"side": side, "case": what, "resolution": res, "precision": prec, "batch": batch,
                        "error": error, "oom": oom})
            bench.cleanup()
            if not (oom and batch > 4):
                break
            batch //= 2      # out of memory: once more at half the minibatch, and so on down to 4
        bench.cleanup()
    return {"info": info, "cases": out}


# ------------------------------------------------------------------ the orchestration and the table
def _key(r):
    return ("inf" if r["case"].startswith("inf") else "train", r["resolution"], r["precision"])


def table(results):
    """Ours vs the peer per (case, resolution, precision): the lines to print and the rows for the JSON."""
    best = {}
    for side in ("ours", "peer"):
        for r in results.get(side, {}).get("cases", []):
            if "img_per_s" in r:
                k = _key(r) + (side,)
                if k not in best or r["batch"] > best[k]["batch"]:   # the full minibatch, if an OOM retry ran
                    best[k] = r
    keys = sorted({k[:3] for k in best}, key=lambda k: (k[0], k[1], k[2]))
    rows, lines = [], []
    head = (f"{'case':9s} {'res':>5s} {'prec':4s} | {'ours img/s':>11s} {'batch':>5s} | "
            f"{'peer img/s':>11s} {'batch':>5s} | ours/peer")
    lines += [head, "-" * len(head)]

    def cell(r):
        return (f"{r['img_per_s']:11.1f} {r['batch']:5d}" if r else f"{'—':>11s} {'':5s}")

    for k in keys:
        o, p = best.get(k + ("ours",)), best.get(k + ("peer",))
        ratio = o["img_per_s"] / p["img_per_s"] if (o and p) else None
        lines.append(f"{k[0]:9s} {k[1]:4d}² {k[2]:4s} | {cell(o)} | {cell(p)} | "
                     + (f"{ratio:6.2f}x" if ratio else "   —"))
        rows.append({"case": k[0], "resolution": k[1], "precision": k[2],
                     "ours_img_per_s": o and o["img_per_s"], "ours_batch": o and o["batch"],
                     "peer_img_per_s": p and p["img_per_s"], "peer_batch": p and p["batch"], "ratio": ratio})
    # Each side at its fastest precision, per case and resolution.
    for case in ("inf", "train"):
        for res in sorted({k[1] for k in keys if k[0] == case}):
            o = [best[k] for k in best if k[0] == case and k[1] == res and k[3] == "ours"]
            p = [best[k] for k in best if k[0] == case and k[1] == res and k[3] == "peer"]
            if o and p:
                bo, bp = max(o, key=lambda r: r["img_per_s"]), max(p, key=lambda r: r["img_per_s"])
                lines.append(f"fastest {case} {res}²: ours {bo['img_per_s']:.1f} ({bo['precision']}) vs peer "
                             f"{bp['img_per_s']:.1f} ({bp['precision']}): {bo['img_per_s'] / bp['img_per_s']:.2f}x")
    return lines, rows


def _child(side, args, cases, budget_s, python):
    fd, path = tempfile.mkstemp(prefix=f"gpu_peer_{side}_", suffix=".json")
    os.close(fd)
    cmd = [python, os.path.abspath(__file__), "--side", side, "--peer-dir", args.peer_dir, "--budget-s",
           str(budget_s), "--cases", json.dumps([list(c) for c in cases]), "--side-json", path]
    if args.cpu:
        cmd.append("--cpu")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if side == "ours":
        env.setdefault("KERAS_BACKEND", "jax")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log(f"{side}: {python} ({len(cases)} cases, budget {budget_s:.0f} s)")
    rc = subprocess.call(cmd, env=env)
    try:
        with open(path, encoding="utf-8") as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = {"info": {}, "cases": [], "error": f"the {side} process exited with status {rc} and wrote no results"}
        log(res["error"])
    finally:
        os.unlink(path)
    res["returncode"] = rc
    return res


# ------------------------------------------------------------------ the user's GPU journey (--journey)
def journey(a):
    """`python train.py` (the demo) on this machine's JAX in a fresh folder, its snapshots' SWD and the time to the
    target's and the README picture's SWD, then `benchmarks/compare_archs.py` on the demo data with what is left
    of the budget."""
    budget_end = T0 + a.budget_s
    tmp = tempfile.mkdtemp(prefix="gpu_journey-")
    cache = os.path.join(tmp, "cache")     # empty: train.py builds the demo dataset, as on a user's first run
    sys.path.insert(0, HERE)
    import demo_check               # captures the user's environment for train.py at import
    user_env = dict(demo_check.USER_ENV, STYLEGAN_TF_CACHE=cache, KERAS_BACKEND="jax")
    demo_check.USER_ENV = user_env
    # train.py and compare_archs run in processes of their own with the user's settings; this one scores in
    # between, so it takes GPU memory as it needs it rather than JAX's default 75 % up front.
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    os.environ["STYLEGAN_TF_CACHE"] = cache
    data_dir = os.path.join(cache, "demo-faces-64")
    results = {"mode": "cpu smoke test" if a.cpu else "gpu", "train_args": a.train_args, "snapshots": []}
    log(f"journey: the demo, `python train.py {' '.join(a.train_args)}`, from an empty cache (the dataset's "
        "build is part of its time)")
    os.makedirs(os.path.join(tmp, "work"))
    t0 = time.time()
    wall, _, run_dir = demo_check.run_demo(os.path.join(tmp, "work"), cache, a.train_args)
    results.update(train_wall_s=wall, run_dir=run_dir)
    stats = [json.loads(line) for line in open(os.path.join(run_dir, "stats.jsonl"), encoding="utf-8")]
    if len(stats) > 1:
        results["steady_sec_per_kimg"] = sum(r["sec_per_tick"] for r in stats[1:]) / sum(
            r["kimg"] - q["kimg"] for q, r in zip(stats, stats[1:]))
    log(f"journey: train.py took {wall:.1f} s" + (f", {results['steady_sec_per_kimg']:.2f} s/kimg after the first "
                                                 "tick" if "steady_sec_per_kimg" in results else ""))

    # Snapshots' SWD, as demo_check scores the final one (same sets and seed; projections sorted on the device),
    # in kimg order until both levels are reached, then the last one.
    import numpy as np
    n = a.swd_images
    reals = demo_check.read_reals(data_dir, n)
    scorer = demo_check.Scorer(reals[:n], 123, on_device=not a.cpu)
    snaps = sorted(glob_snapshots(run_dir), key=demo_check.kimg_of)
    levels = {"target": demo_check.SWD_TARGET, "readme": README_SWD}
    for snap in snaps:
        reached = all(any(r["swd"] <= v for r in results["snapshots"]) for v in levels.values())
        if snap != snaps[-1] and (reached or time.time() > budget_end - 60):
            continue
        d = scorer(demo_check.fakes(snap, n, 123))
        row = {"snapshot": os.path.basename(snap), "kimg": demo_check.kimg_of(snap),
               "seconds": os.path.getmtime(snap) - t0, "swd": d["avg"], "swd32": d[32], "swd16": d[16]}
        results["snapshots"].append(row)
        log(f"journey: {row['snapshot']}  kimg {row['kimg']:4d}  written at {row['seconds']:6.1f} s  "
            f"SWD {d['avg']:6.2f} (32: {d[32]:.2f}, 16: {d[16]:.2f})")
    for name, level in levels.items():
        hit = next((r for r in results["snapshots"] if r["swd"] <= level), None)
        results[f"time_to_swd_{name}"] = hit and {"swd_level": level, "seconds": hit["seconds"], "kimg": hit["kimg"]}
    results["swd_floor"] = floor = float(scorer(reals[n:])["avg"])
    if a.json:
        _write_json(a.json, results)

    # compare_archs with what is left: one process per arch (the user's environment), so that the archs that
    # finished within the budget keep their rows.
    results["compare_archs"] = []
    if a.archs_kimg > 0:
        archs = a.archs.split(",") if a.archs else _arch_names(user_env)
        t = time.time()
        for arch in archs:
            left = budget_end - time.time()
            if left < 45:
                log(f"journey: compare_archs: budget: skipping {arch}")
                results["compare_archs"].append({"arch": arch, "skipped": "budget"})
                continue
            ca_json = os.path.join(tmp, f"compare_archs-{arch}.json")
            cmd = [sys.executable, os.path.join(HERE, "compare_archs.py"), "--data", data_dir, "--resolution", "32",
                   "--kimg", str(a.archs_kimg), "--archs", arch, "--json-out", ca_json,
                   "--grid-out", os.path.join(tmp, f"archs-{arch}.png"), "--swd-images", str(a.swd_images // 2)]
            if a.cpu:
                cmd += ["--ticks", "1", "--minibatch", "16", "--grid", "2x2"]
            log("journey: " + " ".join(cmd[1:]) + f"  (at most {left:.0f} s)")
            try:
                subprocess.run(cmd, env=user_env, timeout=left, check=False)
                with open(ca_json, encoding="utf-8") as f:
                    table = json.load(f)
                rows = [dict(r, swd_floor=table.get("swd_floor")) for r in table.get("rows", [])]
                results["compare_archs"] += rows or [{"arch": arch, "error": "no rows"}]
            except subprocess.TimeoutExpired:
                results["compare_archs"].append({"arch": arch, "error": f"stopped after {left:.0f} s (the budget)"})
            except (OSError, ValueError, AttributeError) as e:
                results["compare_archs"].append({"arch": arch, "error": f"no table: {e}"})
        results["compare_archs_wall_s"] = time.time() - t
        log(f"journey: compare_archs took {results['compare_archs_wall_s']:.1f} s")

    print()
    print("the user's GPU journey" + ("  [CPU SMOKE TEST: not a result]" if a.cpu else ""))
    print(f"  demo (python train.py, JAX): {wall:.1f} s" + (f", {results['steady_sec_per_kimg']:.2f} s/kimg steady"
                                                         if "steady_sec_per_kimg" in results else "")
          + " (the dataset came prebuilt: its build needs TensorFlow)")
    if results["snapshots"]:
        last = results["snapshots"][-1]
        print(f"  final Gs: SWD {last['swd']:.2f} at kimg {last['kimg']} ({n} images; floor reals vs reals "
              f"{floor:.2f})")
    for name, label in (("target", f"SWD <= {demo_check.SWD_TARGET:g} (the demo's target)"),
                        ("readme", f"SWD <= {README_SWD:g} (the README picture)")):
        hit = results[f"time_to_swd_{name}"]
        print(f"  time to {label}: " + (f"{hit['seconds']:.1f} s (snapshot at kimg {hit['kimg']})" if hit
                                        else "not reached by any snapshot"))
    if results["compare_archs"]:
        print("  compare_archs (%g kimg each at 32², minibatch %s):" % (a.archs_kimg, 16 if a.cpu else 32))
        for r in results["compare_archs"]:
            if "img_per_sec" in r:
                print("    %-14s %8.1f img/s  %6.2f s/kimg  wall %6.1f s  SWD %6.2f"
                      % (r["arch"], r["img_per_sec"], r["sec_per_kimg"], r["wall_sec"], r.get("swd", float("nan"))))
            else:
                print("    %-14s %s" % (r.get("arch"), r.get("error") or r.get("skipped")))
    if a.json:
        _write_json(a.json, results)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    ok = bool(results["snapshots"]) and all(np.isfinite(r["swd"]) for r in results["snapshots"])
    return 0 if ok else 1


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=float)


def _arch_names(env):
    """The registered archs, asked of a fresh process (this one keeps Keras' backend unloaded until scoring)."""
    out = subprocess.run([sys.executable, "-c", "from stylegan_tf.networks.archs import arch_names; "
                          "print(','.join(arch_names()))"], env=env, capture_output=True, text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1].split(",") if out.returncode == 0 and out.stdout.strip() else []


def glob_snapshots(run_dir):
    import glob
    return glob.glob(os.path.join(run_dir, "network-snapshot-*.keras"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true", help="tiny sizes (8²/16², minibatch 2): every path in minutes")
    p.add_argument("--peer-dir", default=os.environ.get("PEER_DIR", DEFAULT_PEER_DIR),
                   help=f"the peer's checkout ({PEER_URL}); default $PEER_DIR or "
                   f"{os.path.relpath(DEFAULT_PEER_DIR, REPO)}")
    p.add_argument("--peer-python", default=os.environ.get("PEER_PYTHON", sys.executable),
                   help="the Python with PyTorch for the peer's process (default $PEER_PYTHON or this one)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="seconds for both sides together, a case starts only if its estimate fits (default 400); "
                   "with --journey, for the whole journey (default 540)")
    p.add_argument("--peer-share", type=float, default=0.25, help="the peer's share of --budget-s (default 0.25)")
    p.add_argument("--only", default=None, help="comma-separated WHAT-RES-PREC cases for both sides "
                   "(e.g. inf-1024-bf16,train-256-fp32)")
    p.add_argument("--sides", default="peer,ours", help="which sides to run (default peer,ours)")
    p.add_argument("--json", default=None, help="also write the results here")
    j = p.add_argument_group("the user's GPU journey (instead of the peer comparison)")
    j.add_argument("--journey", action="store_true", help="the demo (`python train.py` on JAX) timed to its SWD, "
                   "then compare_archs")
    j.add_argument("--archs-kimg", type=float, default=4.0, help="kimg per arch in compare_archs (0: skip it)")
    j.add_argument("--archs", default=None, help="compare_archs --archs (default: every registered arch)")
    j.add_argument("--swd-images", type=int, default=4096, help="images per SWD set (default 4096, as demo_check)")
    j.add_argument("train_args", nargs="*", help="after --: arguments for train.py in --journey (e.g. -- "
                   "--total-kimg 32)")
    # Internal: one side in this process (the orchestrator starts these).
    p.add_argument("--side", choices=("peer", "ours"), help=argparse.SUPPRESS)
    p.add_argument("--cases", help=argparse.SUPPRESS)
    p.add_argument("--side-json", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.budget_s is None:
        a.budget_s = 540.0 if a.journey else 400.0
    if a.budget_s <= 0:
        p.error("--budget-s must be positive")
    if not 0 < a.peer_share < 1:
        p.error("--peer-share must be between 0 and 1")
    sides = a.sides.split(",")
    if not sides or any(s not in ("peer", "ours") for s in sides):
        p.error("--sides takes peer, ours or peer,ours")
    if a.train_args and not a.journey:
        p.error(f"unrecognized arguments: {' '.join(a.train_args)} (arguments after -- are for --journey)")
    if a.journey:
        return journey(a)
    a.peer_dir = os.path.abspath(os.path.expanduser(a.peer_dir))
    problem = peer_problem(a.peer_dir)
    if problem and ("peer" in sides if not a.side else a.side == "peer"):
        print(problem, file=sys.stderr)
        return 2

    if a.side:      # a child: run one side's cases here
        cases = [tuple(c) for c in json.loads(a.cases)]
        bench = PeerBench(a.peer_dir, a.cpu) if a.side == "peer" else OursBench(a.cpu)
        res = run_side(a.side, cases, a.budget_s, bench)
        with open(a.side_json, "w", encoding="utf-8") as f:
            json.dump(res, f)
        return 0

    cases = CPU_CASES if a.cpu else GPU_CASES
    if a.only:
        wanted = set(a.only.split(","))
        known = {f"{c[1]}-{c[2]}-{c[3]}" for c in cases}
        bad = sorted(wanted - known)
        if bad:
            p.error(f"--only: unknown case {bad[0]}; known: {', '.join(sorted(known))}")
        cases = [c for c in cases if f"{c[1]}-{c[2]}-{c[3]}" in wanted]
    results = {"mode": "cpu smoke test" if a.cpu else "gpu", "peer": {}, "ours": {}, "peer_dir": a.peer_dir,
               "peer_url": PEER_URL, "differences": DIFFERENCES}
    if problem is None:
        results["peer_commit"] = _peer_commit(a.peer_dir)
    shares = {"peer": a.peer_share if len(sides) == 2 else 1.0, "ours": 1.0 - a.peer_share if len(sides) == 2 else 1.0}
    for side in ("peer", "ours"):
        if side in sides:
            spent = time.time() - T0
            budget = a.budget_s * shares[side] if side == "peer" else a.budget_s - spent
            python = a.peer_python if side == "peer" else sys.executable
            results[side] = _child(side, a, [c for c in cases if c[0] == side], budget, python)
    lines, rows = table(results)
    results["table"] = rows
    print()
    print(f"ours ({results['ours'].get('info', {}).get('device', '?')}) vs rosinality/style-based-gan-pytorch "
          f"({results['peer'].get('info', {}).get('device', '?')})"
          + ("  [CPU SMOKE TEST: not a result]" if a.cpu else ""))
    for line in lines:
        print(line)
    print("\nwhat differs:")
    for d in DIFFERENCES:
        print("  - " + d)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    measured = {_key(c) + (s,) for s in sides for c in results[s].get("cases", []) if "img_per_s" in c}
    # An out-of-memory case that ran at a smaller minibatch is a result, not a failure.
    failed = [c for s in sides for c in results[s].get("cases", [])
              if ("error" in c and not (c.get("oom") and _key(c) + (s,) in measured)) or c.get("finite") is False]
    return 0 if not failed and all(results[s].get("returncode") == 0 for s in sides) else 1


def _peer_commit(peer_dir):
    """The checkout's commit, if it is a git clone of its own (not a folder inside another repository)."""
    if not os.path.exists(os.path.join(peer_dir, ".git")):
        return None
    try:
        return subprocess.run(["git", "-C", peer_dir, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    sys.exit(main())
