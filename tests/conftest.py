import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# Fixtures shared by the project live beside the checkout (in CI too); the product never reads them.
SHARED = REPO.parent / "shared"


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
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED}")
    return SHARED
