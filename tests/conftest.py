import importlib
import os

import numpy as np
import pytest

if os.environ.get("CI") == "true":
    # In CI an independent reference (torch, coremltools, transformers, sentence-transformers,
    # ...) that is missing is a failure, not a skip: a skipped comparison checks nothing.
    def _required(modname, *args, **kwargs):
        try:
            return importlib.import_module(modname)
        except ImportError as e:
            raise ImportError(f"CI=true: {modname!r} is required by this test and is not installed ({e})") from e

    pytest.importorskip = _required


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_collection_finish(session):
    # Every later gc.collect() (coremltools' convert() ends with one) skips what exists now:
    # the collected tests and the imported modules. What tests create is still collected.
    import gc
    gc.freeze()


def pytest_unconfigure(config):
    # back into the collector before exit, so that what the tests left in cycles with frozen
    # objects is freed at shutdown as it was before (nanobind reports instances never freed)
    import gc
    gc.unfreeze()
    gc.collect()
