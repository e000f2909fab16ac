"""Gs inference speed (mapping + synthesis, random noise, psi 1) next to NVIDIA's official graph, same run.

    python benchmarks/bench_inference.py --resolutions 64 256 \
        --official-python /path/anchor-venv/bin/python --official-code /path/stylegan-official
    python benchmarks/bench_inference.py --resolutions 32 --precision fp32 bf16   # ours only, both precisions

Per resolution it alternates, `--rounds` times: our img/s (as many batches as fit in `--seconds`, after one
untimed batch that traces), then the official img/s from the anchor script run as a subprocess
(`official_inference_speed.py CODE RES BATCH`: NVIDIA's G_style under tf.compat.v1, default feature maps, random
noise, no truncation, 20 s of batches). It prints each round and then the medians and the ratio ours/official.
Without an official Python and code (flags or the env vars below) it says that no reference was measured.

The reference is found through, in order: the flags; STYLEGAN_OFFICIAL_PYTHON, STYLEGAN_OFFICIAL_CODE and
STYLEGAN_OFFICIAL_INFERENCE_SCRIPT; the script defaults to `official_inference_speed.py` next to the code folder.
Weights are random (speed does not depend on them). `--precision bf16` runs our Gs in bfloat16 (an opt-in that
changes the images; fp32 is the faithful figure). Measure on an idle machine and read the load it prints.
"""
import argparse
import os
import re
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ENV_PYTHON, ENV_CODE, ENV_SCRIPT = ("STYLEGAN_OFFICIAL_PYTHON", "STYLEGAN_OFFICIAL_CODE",
                                    "STYLEGAN_OFFICIAL_INFERENCE_SCRIPT")


def load():
    return "load avg " + " ".join(f"{x:.2f}" for x in os.getloadavg())


class Ours:
    """Our Gs at one resolution, built once; `measure()` is one timed round."""

    def __init__(self, resolution, batch_size, precision):
        from stylegan_tf.networks import Generator
        t0 = time.perf_counter()
        self.Gs = Generator(resolution=resolution)
        self.batch_size, self.precision = batch_size, precision
        self.rng = np.random.RandomState(0)
        self._run()                                                 # traces; not timed
        self.setup_s = time.perf_counter() - t0

    def _run(self):
        z = self.rng.randn(self.batch_size, self.Gs.latent_size).astype(np.float32)
        return self.Gs.run(z, truncation_psi=1.0, noise_mode="random", batch_size=self.batch_size,
                           precision=self.precision)

    def measure(self, seconds):
        n, t0 = 0, time.perf_counter()
        while True:
            self._run()
            n += self.batch_size
            dt = time.perf_counter() - t0
            if dt >= seconds and n >= 2 * self.batch_size:
                return n / dt


def official(python, script, code, resolution, batch_size):
    """img/s of the official graph (a subprocess), or raise RuntimeError with its output's tail."""
    cmd = [python, script, code, str(resolution), str(batch_size)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = re.search(r"official Gs res \d+ batch \d+: ([0-9.]+) img/s", p.stdout)
    if p.returncode != 0 or m is None:
        tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
        raise RuntimeError(f"official script failed ({' '.join(cmd)}): {' | '.join(tail)}")
    return float(m.group(1))


def reference(a):
    """(python, script, code) of the official reference, or None when not configured."""
    python = a.official_python or os.environ.get(ENV_PYTHON)
    code = a.official_code or os.environ.get(ENV_CODE)
    if not python or not code:
        return None
    script = a.official_script or os.environ.get(ENV_SCRIPT) or \
        os.path.join(os.path.dirname(os.path.abspath(code)), "official_inference_speed.py")
    for what, path in (("--official-python", python), ("--official-code", code), ("--official-script", script)):
        if not os.path.exists(path):
            sys.exit(f"{what}: {path} does not exist")
    return python, script, code


def bench(resolution, a, ref):
    ours = {p: Ours(resolution, a.batch_size, p) for p in a.precision}
    rounds = {p: [] for p in a.precision}
    theirs = []
    for r in range(a.rounds):
        for p, o in ours.items():
            rounds[p].append(o.measure(a.seconds))
        if ref is not None:
            theirs.append(official(*ref, resolution, a.batch_size))
        print(f"  {resolution}^2 round {r + 1}: " +
              "  ".join(f"ours {p} {rounds[p][-1]:.2f}" for p in a.precision) +
              (f"  official {theirs[-1]:.2f}" if theirs else "") + f" img/s  ({load()})", flush=True)
    off = float(np.median(theirs)) if theirs else None
    for p in a.precision:
        mine = float(np.median(rounds[p]))
        tail = (f"official {off:8.2f} img/s  ratio {mine / off:5.2f}x" if off else
                "official not measured (no --official-python/--official-code)")
        print(f"{resolution:5d}^2 batch {a.batch_size} {p}: ours {mine:8.2f} img/s  {tail}  "
              f"(medians of {a.rounds}; setup {ours[p].setup_s:.1f} s)", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="alternations ours/official (medians are printed)")
    p.add_argument("--seconds", type=float, default=10.0, help="our timed batches per round last this long")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                   help="our compute precision(s); bf16 changes the images (fp32 is the faithful figure)")
    p.add_argument("--official-python", help=f"python with TensorFlow for NVIDIA's code (or ${ENV_PYTHON})")
    p.add_argument("--official-code", help=f"a snapshot of NVlabs/stylegan (or ${ENV_CODE})")
    p.add_argument("--official-script", help=f"the anchor script (or ${ENV_SCRIPT}; default: "
                   "official_inference_speed.py next to the code folder)")
    a = p.parse_args()
    if a.rounds < 1 or a.batch_size < 1 or a.seconds <= 0:
        p.error("--rounds and --batch-size must be >= 1, --seconds > 0")
    ref = reference(a)
    import tensorflow as tf
    device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    print(f"{device}, {os.cpu_count()} cores, {load()}; reference: "
          f"{'official graph ' + ref[2] if ref else 'none measured'}", flush=True)
    for r in a.resolutions:
        bench(r, a, ref)
    print(f"done ({load()})")


if __name__ == "__main__":
    main()
