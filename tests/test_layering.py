"""Imports flow one way: the CLIs -> training / generate / metrics -> network_io -> networks -> layers, with
data/ beside the networks and a few small shared modules as the floor. Checked on the source
(every import statement, in functions too, and importlib calls with a literal name), so a lower module that
reaches up fails here rather than in a circular import later."""
import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
HIGH = {"training", "generate", "metrics", "editing", "callbacks", "explore"}
NETWORK_IO = {"network_io", "official_pickle"}
LAYERED = HIGH | NETWORK_IO | {"networks", "layers", "data"}
# Small modules that everything may use (files, pictures, pickles, the cache folder, the CLI conventions):
# they import only each other.
FLOOR = {"atomic", "image_grid", "safe_pickle", "paths", "cli", "cluster"}
# First part of a module path under stylegan_tf -> the parts of stylegan_tf it must never import.
FORBIDDEN = {
    "layers": LAYERED - {"layers"},
    "networks": LAYERED - {"networks", "layers"},
    "network_io": HIGH | {"data"},
    "official_pickle": HIGH | {"data", "network_io"},
    "data": LAYERED - {"data"},
    # The augmentations of the images D sees: training calls them; they may use layers and the networks' draws.
    "augment": LAYERED - {"layers", "networks"},
    **{name: LAYERED for name in FLOOR},
    # train.py's supervising parent of a JAX worker: it must start without Keras, so it stays on the floor's
    # modules (the cluster description) and the standard library.
    "supervise": LAYERED,
    # Editing sits beside generate (whose seeds, layer presets and output checks it reuses) and metrics (the
    # torch-free .pth reader, for LPIPS weights) and reads datasets; training is not its business, and
    # nothing but the CLIs imports it.
    "editing": {"training", "explore"},
    "generate": {"editing", "explore"},
    "metrics": {"editing", "explore"},
    # The browser explorer sits on top: it draws with generate and editing; only generate.py's CLI imports it.
    "explore": {"training", "callbacks"},
    # The public Keras callbacks adapt training's snapshot/options code for a user's own fit; training itself
    # never imports them (its loop has its own in training/callbacks.py).
    "training": {"callbacks", "explore"},
}


def _source_files():
    """[(module path, file)] of every module of the package; metrics/ is installed as stylegan_tf.metrics."""
    files = [(".".join(f.relative_to(REPO).with_suffix("").parts), f)
             for f in sorted((REPO / "stylegan_tf").rglob("*.py"))]
    return files + [("stylegan_tf." + ".".join(f.relative_to(REPO).with_suffix("").parts), f)
                    for f in sorted((REPO / "metrics").glob("*.py"))]


def _imported(module, tree):
    """Absolute names of every module `tree` imports (relative imports resolved against `module`)."""
    package = module.split(".")[:-1]  # the package a relative import starts from (for __init__ too)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.args[0].value


def _part(name):
    """The first part under stylegan_tf of a module name (None outside the package)."""
    parts = name.split(".")
    return parts[1] if parts[0] == "stylegan_tf" and len(parts) > 1 else None


@pytest.mark.parametrize("module, path", _source_files(), ids=[m for m, _ in _source_files()])
def test_imports_flow_down(module, path):
    own = _part(module)
    forbidden = FORBIDDEN.get(own, set())
    bad = sorted({name for name in _imported(module, ast.parse(path.read_text(encoding="utf-8")))
                  if _part(name) in forbidden})
    assert not bad, f"{module} imports {bad}: {own} sits below them"


def test_the_layering_covers_every_low_module():
    """A new top-level module below training/generate/metrics must be given its place here."""
    parts = {_part(m) for m, _ in _source_files()} - {None, "__init__"}
    assert parts - HIGH == set(FORBIDDEN) - HIGH, \
        f"place {sorted(parts - HIGH - set(FORBIDDEN))} in FORBIDDEN or FLOOR"
