"""benchmarks/gpu_peer.py (ours against a PyTorch StyleGAN on a GPU): without the peer's checkout it says in one
line how to get it, its arguments are checked before anything runs, and its table pairs the right rows. Needs
neither PyTorch nor a GPU (the measuring itself runs on the GPU machine; `--cpu` is its smoke test)."""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_peer.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_peer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_absent_peer_is_one_line_saying_how_to_get_it(tmp_path):
    missing = tmp_path / "nowhere"
    for proc in (_run("--peer-dir", str(missing)), _run("--cpu", "--peer-dir", str(missing))):
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(missing) in lines[0]
        assert "git clone https://github.com/rosinality/style-based-gan-pytorch" in lines[0]


def test_shell_wrapper_checks_the_peer_before_installing(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PEER_DIR": str(tmp_path / "nowhere"), "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_peer.sh")], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "git clone https://github.com/rosinality/style-based-gan-pytorch" in proc.stderr


def test_a_directory_without_the_peers_model_is_refused(tmp_path):
    (tmp_path / "model.py").write_text("print('not the peer')\n")
    assert _module().peer_problem(str(tmp_path)) is not None
    (tmp_path / "model.py").write_text("class StyledGenerator:\n    pass\n")
    assert _module().peer_problem(str(tmp_path)) is None


@pytest.mark.parametrize("args, message", [
    (["--only", "inf-999-fp32"], "--only: unknown case inf-999-fp32"),
    (["--budget-s", "0"], "--budget-s must be positive"),
    (["--sides", "theirs"], "--sides takes"),
    (["--peer-share", "1.5"], "--peer-share must be between 0 and 1"),
    (["stray"], "arguments after -- are for --journey"),
])
def test_bad_arguments_fail_before_anything_runs(tmp_path, args, message):
    # A stand-in checkout that would fail loudly if it were imported: argument errors come first.
    (tmp_path / "model.py").write_text("class StyledGenerator: pass\nraise SystemExit('imported')\n")
    proc = _run("--peer-dir", str(tmp_path), *args)
    assert proc.returncode == 2 and message in proc.stderr and "imported" not in proc.stderr + proc.stdout


def test_table_pairs_ours_with_the_peer_and_keeps_the_full_minibatch():
    gp = _module()

    def case(side, what, res, prec, batch, ips):
        return {"side": side, "case": what, "resolution": res, "precision": prec, "batch": batch, "img_per_s": ips}

    skipped = {"side": "ours", "case": "train", "resolution": 1024, "precision": "bf16", "skipped": "budget"}
    results = {
        "ours": {"cases": [case("ours", "inference", 256, "bf16", 128, 4000.0),
                           case("ours", "train", 256, "fp32", 32, 170.0), skipped]},
        "peer": {"cases": [case("peer", "inference", 256, "bf16", 128, 1000.0),
                           case("peer", "inference", 256, "fp32", 128, 800.0),
                           {"side": "peer", "case": "train", "resolution": 256, "precision": "fp32", "batch": 32,
                            "error": "OutOfMemoryError: x", "oom": True},
                           case("peer", "train", 256, "fp32", 16, 85.0)]},
    }
    lines, rows = gp.table(results)
    by = {(r["case"], r["resolution"], r["precision"]): r for r in rows}
    assert by["inf", 256, "bf16"]["ratio"] == pytest.approx(4.0)
    assert by["inf", 256, "fp32"]["ours_img_per_s"] is None and by["inf", 256, "fp32"]["ratio"] is None
    assert by["train", 256, "fp32"]["ratio"] == pytest.approx(2.0) and by["train", 256, "fp32"]["peer_batch"] == 16
    assert ("train", 1024, "bf16") not in by           # skipped on both sides: no row
    fastest = [line for line in lines if line.startswith("fastest inf 256")]
    assert fastest and fastest[0].endswith("4.00x")    # ours bf16 4000 vs the peer's best, bf16 1000


def test_a_side_retries_at_half_the_minibatch_when_out_of_memory_and_keeps_to_its_budget():
    gp = _module()

    class FakeBench:
        """Out of memory above minibatch 8; any other failure is reported once, without a retry."""
        calls = []

        def info(self):
            return {"device": "fake"}

        def run_case(self, what, res, prec, batch, n):
            self.calls.append((what, res, prec, batch))
            if prec == "bf16":
                raise ValueError("not this one")
            if batch > 8:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return {"side": "peer", "case": "train", "resolution": res, "precision": prec, "batch": batch,
                    "img_per_s": 10.0 * batch}

        def is_oom(self, e):
            return "out of memory" in str(e)

        def cleanup(self):
            return None     # the stand-in holds no device memory to free

    cases = [("peer", "train", 1024, "fp32", 32, 1, 0), ("peer", "train", 256, "bf16", 32, 1, 0),
             ("peer", "train", 512, "fp32", 32, 1, 10 ** 6)]       # the last one's estimate is over the budget
    out = gp.run_side("peer", cases, 100.0, FakeBench())["cases"]
    assert FakeBench.calls == [("train", 1024, "fp32", 32), ("train", 1024, "fp32", 16), ("train", 1024, "fp32", 8),
                               ("train", 256, "bf16", 32)]
    assert [c.get("oom") for c in out[:2]] == [True, True] and out[2]["batch"] == 8 and out[2]["img_per_s"] == 80.0
    assert out[3]["error"].startswith("ValueError") and out[3]["oom"] is False
    assert out[4] == {"side": "peer", "case": "train", "resolution": 512, "precision": "fp32", "skipped": "budget"}
