"""docs/architecture.md's module tree names every module of stylegan_tf/ and metrics/, and nothing that is gone."""
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"
INDENT = 2  # spaces per folder level in the tree


def _tree_block(text):
    """The lines of the first fenced block after the '## Modules' heading."""
    parts = text.split("\n## Modules\n", 1)
    assert len(parts) == 2 and parts[1].count("```") >= 2, "docs/architecture.md: no '## Modules' tree in a ``` block"
    return parts[1].split("```", 2)[1].splitlines()[1:]


def _tree_paths(lines):
    """The .py paths a tree of `name/` and `name.py` entries (one per line, nested by indentation) lists."""
    folders, paths = [], set()
    for line in lines:
        match = re.match(r"( *)(\S+)", line)
        if not match:
            continue
        depth, name = len(match.group(1)) // INDENT, match.group(2)
        del folders[depth:]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
        elif name.endswith(".py"):
            paths.add("/".join(folders + [name]))
    return paths


def _modules():
    return {f.relative_to(REPO).as_posix() for package in ("stylegan_tf", "metrics")
            for f in (REPO / package).rglob("*.py") if "__pycache__" not in f.parts}


def test_the_module_tree_lists_every_module():
    listed = _tree_paths(_tree_block(ARCHITECTURE.read_text(encoding="utf-8")))
    assert not _modules() - listed, f"docs/architecture.md's module tree misses {sorted(_modules() - listed)}"
    gone = sorted(listed - _modules())
    assert not gone, f"docs/architecture.md's module tree lists modules that do not exist: {gone}"


def test_the_tree_reader_nests_by_indentation():
    lines = ["pkg/", "  a.py   x", "  sub/", "    b.py   y", "  c.py", "top.py"]
    assert _tree_paths(lines) == {"pkg/a.py", "pkg/sub/b.py", "pkg/c.py", "top.py"}
