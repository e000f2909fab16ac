"""Every notebook in notebooks/ runs top to bottom on the CPU at a tiny size, as CI runs it.

A notebook is JSON: its code cells run in order in one fresh Python process (no Jupyter needed). Cells tagged
`colab-only` (runtime check, install, Drive, TensorBoard magics) are skipped, and only those; any other cell must
be plain Python (no `!` shell lines or `%` magics). The notebooks read their sizes from `NB_*` environment
variables, so the same cells run at full size on Colab. A failing cell fails the test with its index and source.
"""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
COLAB_ONLY = "colab-only"

# What each notebook's NB_* variables are set to in CI (tmp: the test's temporary folder).
TINY_NET = "--fmap-base 64 --fmap-max 16 --latent-size 16 --dlatent-size 16 --mapping-layers 2 --mapping-fmaps 16"


def _ci_env(name, tmp):
    common = {"NB_REPO": str(REPO), "NB_WORK": str(tmp / "work")}
    if name == "stylegan_tf_colab":
        return {**common, "NB_IMAGES": str(tmp / "images"), "NB_RESOLUTION": "32", "NB_KIMG": "0.064",
                "NB_SNAP_MINUTES": "5",
                "NB_TRAIN_FLAGS": f"--mirror --minibatch 8 --lod-initial-resolution 32 --tick-kimg 0.032 "
                                  f"--no-progress {TINY_NET}",
                "NB_METRICS": "swd16k", "NB_METRIC_NUM": "64", "NB_FRAMES": "2",
                # NVIDIA's own code wrote this 32x32 pickle (tests/fixtures/README.md).
                "NB_PKL": str(REPO / "tests" / "fixtures" / "official-stylegan" / "official-r32.pkl"),
                "NB_PKL_KIMG": "10000", "NB_FINETUNE_KIMG": "0.032"}
    if name == "keras_api":
        return {**common, "NB_RESOLUTION": "16", "NB_DEMO_COUNT": "64", "NB_BATCH": "8", "NB_EPOCHS": "2",
                "NB_STEPS": "8", "NB_FADE_KIMG": "0.032", "NB_NET": "64,16,16", "NB_EDIT_SAMPLES": "64",
                "NB_TRAIN_KIMG": "0.032", "NB_TICK_KIMG": "0.032"}
    if name == "compare_gans":
        small = {"minibatch": 8, "tick_kimg": 0.032, "latent_size": 16, "fmap_max": 16}
        return {**common, "NB_RESOLUTION": "16", "NB_DEMO_COUNT": "64", "NB_KIMG": "0.032", "NB_EDIT_SAMPLES": "64",
                "NB_SMALL": json.dumps({"stylegan": {**small, "fmap_base": 64, "dlatent_size": 16, "mapping_layers": 2,
                                                     "mapping_fmaps": 16},
                                        "dcgan": {**small, "width": 8}})}
    return common


def _scraped_images(folder):
    """A small 'scraped' folder: pictures of several sizes and formats, a subfolder, and two unusable files."""
    from PIL import Image
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    for i in range(24):
        size = (40 + i % 3 * 8, 36 + i % 2 * 12)
        img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        img.save(folder / ("sub" if i % 4 == 0 else ".") / f"img{i}.{('png', 'jpg')[i % 2]}")
    (folder / "error.jpg").write_text("<html>403 Forbidden</html>")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "tiny.png")


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code_cells(nb):
    """[(index among all cells, source, tags)] of the code cells."""
    return [(i, _source(c), c.get("metadata", {}).get("tags", [])) for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code"]


_RUNNER = textwrap.dedent('''
    import json, sys, traceback
    cells = json.load(open(sys.argv[1]))
    namespace = {"__name__": "__main__"}
    for index, source in cells:
        print(f"\\n=== cell {index} ===", flush=True)
        try:
            exec(compile(source, f"<cell {index}>", "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"NOTEBOOK-CELL-FAILED {index}", flush=True)
            sys.exit(1)
    print("NOTEBOOK-DONE", flush=True)
''')


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"stylegan_tf_colab", "keras_api"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped_and_plain_python_outside_colab_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs", []) == [] and cell.get("execution_count") is None, \
                f"{path.name} cell {i} has outputs: strip them before committing"
    tagged = 0
    for i, source, tags in _code_cells(nb):
        if COLAB_ONLY in tags:
            tagged += 1
            continue
        shell = [line for line in source.splitlines() if line.lstrip().startswith(("!", "%"))]
        assert not shell, f"{path.name} cell {i} uses {shell[0]!r} but is not tagged {COLAB_ONLY!r}"
        compile(source, f"{path.name} cell {i}", "exec")
    assert tagged, f"{path.name}: expected its Colab setup cells to be tagged {COLAB_ONLY!r}"


def test_only_colab_cells_are_tagged():
    """The tag is for what cannot run outside Colab: Drive, shell lines, magics, the GPU check."""
    colab_markers = ("google.colab", "!", "%", "nvidia-smi")
    for path in NOTEBOOKS:
        for i, source, tags in _code_cells(json.loads(path.read_text(encoding="utf-8"))):
            if COLAB_ONLY in tags:
                assert any(m in source for m in colab_markers), \
                    f"{path.name} cell {i} is tagged {COLAB_ONLY!r} but could run in CI: untag it"


# The two notebooks the README links run in every CI run (about 2 minutes together on 2 cores); the optional
# comparison notebook trains three networks and runs with --runslow, to keep the notebook tests under 3 minutes.
SLOW_NOTEBOOKS = {"compare_gans"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_NOTEBOOKS else p
                                  for p in NOTEBOOKS], ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [(i, src) for i, src, tags in _code_cells(nb) if COLAB_ONLY not in tags]
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    (tmp_path / "runner.py").write_text(_RUNNER)
    env = {**os.environ, **_ci_env(path.stem, tmp_path), "STYLEGAN_TF_CACHE": str(tmp_path / "cache"),
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    if path.stem == "stylegan_tf_colab":
        _scraped_images(tmp_path / "images")
    proc = subprocess.run([sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "cells.json")],
                          cwd=str(path.parent), env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    if proc.returncode or "NOTEBOOK-DONE" not in proc.stdout:
        failed = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("NOTEBOOK-CELL-FAILED")]
        where = ""
        if failed:
            source = dict(cells)[int(failed[0])]
            where = f"cell {failed[0]} failed:\n{source}\n"
        pytest.fail(f"{path.name}: {where}--- output (last 6000 characters) ---\n{out[-6000:]}", pytrace=False)
