"""Fixtures the MVCNet CLI and harness tests share."""

import pytest


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    from medcl.mvcnet.simulate import write_simulated

    return write_simulated(tmp_path_factory.mktemp("mi"), subjects=2, fmt="edf",
                           n_trials_per_class=10, seed=0)
