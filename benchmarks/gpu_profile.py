"""Where the time of 1024² inference goes on a GPU (JAX backend), and what the candidate fixes are worth.

    SCRIPT=gpu_profile.py bash benchmarks/gpu_check.sh          # on the GPU machine (JAX, no TensorFlow)
    KERAS_BACKEND=jax python benchmarks/gpu_profile.py --cpu     # the same code paths at 32², in seconds

Two parts, each printed as it is measured:
1. Single operations on the tensors of the 1024² and 512² blocks of the official generator (batch B, NHWC,
   16 / 32 channels): a bandwidth reference (x * 2), the 3x3 conv (and the same data as a 4x-wider conv at half
   resolution, after a space-to-depth reshape: 3x3 and 2x2), the fused up-conv, the blur as a depthwise
   conv and as separable shifted adds, the layer epilogue (noise, bias, lrelu, instance norm, style modulation),
   instance norm alone in two passes and in one, and the noise draw with JAX's default PRNG and with `rbg`.
2. The whole Gs (mapping + synthesis, random noise, psi 1) as gpu_check's `inf` case, with each candidate
   change switched on alone and all together: `level0` (synthesize only the final resolution's toRGB when
   lod is 0: exact, lerp(a, b, 0) == a), `sepblur` (separable blur), `in1pass` (one-pass instance-norm
   statistics in fp32), `rbg` (random noise from the `rbg` PRNG), for several batch sizes.
The variants are patched in here, in the benchmark only; what pays is then built into the layers.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def timeit(fn, *args, iters=10):
    """Median-free mean ms of a jitted call after one compile-and-warm-up call (device arrays)."""
    f = jax.jit(fn)
    jax.block_until_ready(f(*args))
    t = time.perf_counter()
    for _ in range(iters):
        out = f(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / iters * 1e3


# ---------------------------------------------------------------------------------------- variants
def blur_separable(x):
    """[1,2,1]/4 along H then W with zero padding: what the depthwise 3x3 blur computes."""
    p = jnp.pad(x, [(0, 0), (1, 1), (0, 0), (0, 0)])
    x = (p[:, :-2] + p[:, 2:] + 2 * p[:, 1:-1]) * 0.25
    p = jnp.pad(x, [(0, 0), (0, 0), (1, 1), (0, 0)])
    return (p[:, :, :-2] + p[:, :, 2:] + 2 * p[:, :, 1:-1]) * 0.25


def instance_norm_1pass(x, epsilon=1e-8):
    xf = x.astype(jnp.float32)
    mean = jnp.mean(xf, axis=(1, 2), keepdims=True)
    var = jnp.maximum(jnp.mean(jnp.square(xf), axis=(1, 2), keepdims=True) - jnp.square(mean), 0.0)
    return ((xf - mean) * jax.lax.rsqrt(var + epsilon)).astype(x.dtype)


def space_to_depth(x):
    """NHWC [B, H, W, C] -> [B, H/2, W/2, 4C]: a 3x3 conv at full resolution is a 3x3 (or, offset by a pixel,
    2x2) conv with 4x the maps at half resolution; wider convolutions may suit the tensor cores better."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)


def _conv(x, k):
    return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def patch(variants):
    """Switch the named variants on in the imported layers (this process only)."""
    from stylegan_tf.layers import blur as blur_mod
    from stylegan_tf.layers import epilogue
    from stylegan_tf.networks import draws
    if "sepblur" in variants:
        orig_call = blur_mod.Blur.call

        def call(self, x):
            return x if self._kernel is None else blur_separable(x)
        blur_mod.Blur.call = call
        blur_mod.Blur._orig_call = orig_call
    if "in1pass" in variants:
        epilogue.instance_norm = instance_norm_1pass
    if "rbg" in variants:
        def normal(shape, seed=None, salt=0, dtype="float32"):
            key = jax.random.key(0 if seed is None else salt, impl="rbg")
            if seed is not None:
                key = jax.random.fold_in(jax.random.fold_in(key, jnp.asarray(seed)[0]), jnp.asarray(seed)[1])
            return jax.random.normal(key, shape, dtype=dtype)
        draws.normal = normal


# ---------------------------------------------------------------------------------------- part 1
def ops_profile(batch, small):
    from stylegan_tf.layers import Blur, LayerEpilogue
    from stylegan_tf.layers.normalization import instance_norm
    from stylegan_tf.layers.resample import UpConv2D
    from stylegan_tf.layers.equalized import EqualizedConv2D
    dt = keras.mixed_precision.global_policy().compute_dtype
    rows = []
    for res, ch in ((32, 16),) if small else ((1024, 16),):
        x = jax.random.normal(jax.random.PRNGKey(0), (batch, res, res, ch)).astype(dt)
        half = jax.random.normal(jax.random.PRNGKey(1), (batch, res // 2, res // 2, 2 * ch)).astype(dt)
        w = jax.random.normal(jax.random.PRNGKey(2), (batch, 512)).astype("float32")
        noise = jax.random.normal(jax.random.PRNGKey(3), (batch, res, res, 1)).astype(dt)
        conv = EqualizedConv2D(ch, ch, kernel=3)
        up = UpConv2D(ch, 2 * ch, fused=True)
        upn = UpConv2D(ch, 2 * ch, fused=False)
        blur = Blur(ch)
        epi = LayerEpilogue(ch, 512)
        s2d = space_to_depth(x)
        k3 = jax.random.normal(jax.random.PRNGKey(6), (3, 3, 4 * ch, 4 * ch)).astype(dt)
        k2 = jax.random.normal(jax.random.PRNGKey(7), (2, 2, 4 * ch, 4 * ch)).astype(dt)
        cases = {
            "x*2 (bandwidth reference)": (lambda x: x * 2, x),
            "conv 3x3": (conv, x),
            "space-to-depth 2x2 (reshape)": (space_to_depth, x),
            "s2d: conv 3x3 4ch->4ch at res/2": (lambda s: _conv(s, k3), s2d),
            "s2d: conv 2x2 4ch->4ch at res/2": (lambda s: _conv(s, k2), s2d),
            "up-conv fused (transposed)": (up, half),
            "up-conv nearest + conv": (upn, half),
            "blur depthwise": (blur, x),
            "blur separable": (blur_separable, x),
            "epilogue (noise..style mod)": (lambda x: epi(x, w, noise=noise), x),
            "instance norm 2-pass": (instance_norm, x),
            "instance norm 1-pass fp32": (instance_norm_1pass, x),
            "noise draw threefry": (lambda k: jax.random.normal(k, (batch, res, res, 1), dt), jax.random.PRNGKey(5)),
            "noise draw rbg": (lambda k: jax.random.normal(k, (batch, res, res, 1), dt),
                               jax.random.key(5, impl="rbg")),
        }
        mb = x.size * x.dtype.itemsize / 2 ** 20
        for name, (fn, arg) in cases.items():
            try:
                ms = timeit(fn, arg)
            except Exception as e:   # report and go on
                log(f"{res}² {ch}ch {name}: FAILED {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                continue
            gbs = 2 * mb / 1024 / (ms / 1e3)
            log(f"{res}²x{ch} {dt} batch {batch} ({mb:.0f} MiB/tensor): {name:30s} {ms:8.2f} ms "
                f"(= {gbs:6.0f} GiB/s if it read+wrote one tensor)")
            rows.append({"res": res, "ch": ch, "op": name, "ms": ms, "tensor_mib": mb})
    return rows


# ---------------------------------------------------------------------------------------- part 2
def whole(resolution, batch, level0, small, iters=10):
    from stylegan_tf.networks import Generator
    kw = dict(fmap_base=64, fmap_max=32, latent_size=32, dlatent_size=32, mapping_fmaps=32) if small else {}
    G = Generator(resolution=resolution, num_channels=3, **kw)
    variables = G.trainable_variables + G.non_trainable_variables
    values = [v.value for v in variables]

    def fwd(values, z, key):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            if not level0:
                return G(z, training=False, noise_mode="random", seed=key)
            w = G.mapping(z, None)
            return G.synthesis(w, lod=0.0, level=0, fade=False, noise_mode="random", seed=key)

    z = jax.random.normal(jax.random.PRNGKey(0), (batch, G.latent_size))
    key = jax.random.PRNGKey(1)
    f = jax.jit(fwd)
    t = time.perf_counter()
    jax.block_until_ready(f(values, z, key))
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(iters):
        out = f(values, z, jax.random.fold_in(key, i))
    jax.block_until_ready(out)
    dt = (time.perf_counter() - t) / iters
    return batch / dt, compile_s


def _child(args, tag, timeout, echo=False):
    import subprocess
    cmd = [sys.executable, os.path.abspath(__file__)] + args
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{' '.join(args)}: timed out after {timeout} s")
        return None
    if echo:
        print("\n".join(s for s in p.stdout.splitlines() if not s.startswith(tag)), flush=True)
    line = [s for s in p.stdout.splitlines() if s.startswith(tag)]
    if not line:
        err = [s for s in p.stderr.strip().splitlines() if "Error" in s or "error" in s][-3:]
        log(f"{' '.join(args)}: FAILED {err or p.stderr.strip().splitlines()[-3:]}")
        return None
    return json.loads(line[0][len(tag):])


def run_whole(cases, resolution, small, budget_s):
    """Each variant set in a fresh process: the patches are process-wide."""
    rows = []
    for vs, b in cases:
        if time.time() - T0 > budget_s:
            log(f"budget: skipping {'+'.join(vs) or 'baseline'} batch {b}")
            continue
        r = _child(["--one", ",".join(vs) or "-", "--res", str(resolution), "--batch", str(b)]
                   + (["--cpu"] if small else []), "WHOLE ", 300)
        if r is not None:
            log(f"Gs {resolution}² bf16 random noise batch {b:3d} [{'+'.join(vs) or 'baseline':28s}] "
                f"{r['img_per_s']:8.1f} img/s (compile {r['compile_s']:.0f} s)")
            rows.append(r)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--ops", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--res", type=int, default=1024)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--budget-s", type=float, default=420.0, help="skip the remaining whole-Gs cases after this")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    a = p.parse_args()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if a.precision == "bf16" else "float32")
    if a.one is not None:
        vs = [] if a.one == "-" else a.one.split(",")
        patch(vs)
        ips, cs = whole(a.res, a.batch, "level0" in vs, a.cpu)
        print("WHOLE " + json.dumps({"variants": vs, "batch": a.batch, "img_per_s": ips, "compile_s": cs}))
        return
    if a.ops:
        print("OPS " + json.dumps(ops_profile(8 if a.cpu else 64, a.cpu)))
        return
    # This process never touches the device: each measurement runs in a child that owns all of its memory.
    res = 32 if a.cpu else 1024
    out = {"ops": _child(["--ops"] + (["--cpu"] if a.cpu else []), "OPS ", 300, echo=True) or []}
    every = ["level0", "sepblur", "in1pass", "rbg"]
    cases = [([], 64), (["level0"], 64), (every, 64), (["in1pass"], 64), (["level0", "in1pass"], 128),
             (["sepblur"], 64), (["rbg"], 64)]
    out["whole"] = run_whole(cases, res, a.cpu, a.budget_s)
    print("RESULTS " + json.dumps(out), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
