import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# Numbers produced by running NVIDIA's official code (see fixtures/README.md), vendored so that a plain clone
# runs every test. The product never reads them.
FIXTURES = REPO / "tests" / "fixtures"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long test, skipped unless --runslow or STYLEGAN_TF_SLOW=1")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("STYLEGAN_TF_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI keeps the suite under 15 minutes)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixtures_dir():
    """tests/fixtures; a missing folder fails the test (it is part of the repository), never a skip."""
    if not (FIXTURES / "official-stylegan").is_dir() or not (FIXTURES / "fid-inception").is_dir():
        pytest.fail(f"test fixtures missing at {FIXTURES}: they are part of the repository (git checkout them)")
    return FIXTURES
