"""The CPU speed options: --cpu-parallelism (TensorFlow's thread layout, set before its runtime starts) and
--mixed-precision's AMX check."""
import os
import subprocess
import sys

import pytest

from stylegan_tf.training import TrainingOptions
from stylegan_tf.training import prepare as prep
from stylegan_tf.training.options import validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORES = len(os.sched_getaffinity(0))

# A fresh process (threads can only be set before TensorFlow's first op): the line returned, then the threads.
PROBE = """
import sys
import tensorflow as tf
from stylegan_tf.training import TrainingOptions
from stylegan_tf.training.prepare import set_cpu_parallelism
note = set_cpu_parallelism(TrainingOptions(cpu_parallelism=sys.argv[1], fmap_max=int(sys.argv[2])))
tf.constant(1.0) + 1.0    # the runtime starts with the threads set above
print(note)
print(tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())
"""


def probe(mode, fmap_max):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    out = subprocess.run([sys.executable, "-c", PROBE, mode, str(fmap_max)], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    note, threads = out.stdout.strip().splitlines()[-2:]
    return note, tuple(int(t) for t in threads.split())


@pytest.mark.skipif(any(d.device_type == "GPU" for d in __import__("tensorflow").config.list_physical_devices()),
                    reason="auto leaves the threads alone when a GPU is present")
def test_layouts_in_a_fresh_process():
    note, threads = probe("auto", 64)                 # the demo's widths: one core per op
    assert threads == (1, CORES) and "inter-op" in note
    assert probe("auto", 512) == ("None", (0, 0))     # default widths: TensorFlow's own layout (0 = its default)
    assert probe("intra-op", 64) == ("None", (0, 0))
    assert probe("inter-op", 512)[1] == (1, CORES)


def test_too_late_in_a_running_process_is_said_not_raised():
    import tensorflow as tf
    tf.constant(0.0) + 1.0    # this process's runtime has started
    if (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads()) == (1, CORES):
        pytest.skip("this process already runs with the inter-op layout")
    note = prep.set_cpu_parallelism(TrainingOptions(cpu_parallelism="inter-op"))
    assert note.startswith("--cpu-parallelism inter-op: TensorFlow was already running")
    assert prep.set_cpu_parallelism(TrainingOptions(cpu_parallelism="auto", fmap_max=64)) is None


def test_unknown_mode_is_one_line():
    errs = validate(TrainingOptions(cpu_parallelism="fast"))
    assert errs == ["--cpu-parallelism 'fast' is unknown: choose one of auto, intra-op, inter-op"]


@pytest.mark.parametrize("amx", [True, False])
def test_bf16_on_a_cpu_without_amx_is_said(monkeypatch, amx):
    import keras
    import tensorflow as tf
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU gets fp16, not bf16")
    monkeypatch.setattr(prep, "cpu_has_amx", lambda: amx)
    policy = keras.mixed_precision.global_policy()
    try:
        note = prep.set_precision(TrainingOptions(mixed_precision=True))
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy(policy)
    assert (note is None) == amx
    assert amx or note.startswith("--mixed-precision: this CPU has no AMX")
    assert prep.set_precision(TrainingOptions()) is None and keras.mixed_precision.global_policy() == policy
