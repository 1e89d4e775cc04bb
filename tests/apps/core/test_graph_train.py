"""Short training runs of every graph method lower their loss (mechanism check, 2 seeds each),
and the checked configuration refuses bad combinations."""

import pytest

from medcl.core.graph_data import load_graph
from medcl.core.graph_train import GraphConfig, prepare, train
from medcl.io.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("method,pot,data", [("gcool", False, "sbm"), ("grace", True, "sbm"),
                                             ("meow", False, "hetero"),
                                             ("adameow", False, "hetero")])
def test_short_runs_lower_the_loss(method, pot, data):
    for seed in (0, 1):
        cfg = GraphConfig(method=method, pot=pot, data=data, nodes=80, epochs=20, lr=5e-3,
                          seed=seed)
        prep = prepare(cfg, load_graph(data, nodes=80))
        _, history, _ = train(cfg, prep, progress=False)
        first = sum(r["loss"] for r in history[:3]) / 3
        last = sum(r["loss"] for r in history[-3:]) / 3
        assert last < first - 0.2, (method, seed, first, last)  # seen: drops of 0.4-4


def test_config_refuses_bad_combinations():
    with pytest.raises(ConfigError, match="--pot works with grace and gcool"):
        GraphConfig(method="meow", pot=True)
    with pytest.raises(ConfigError, match="--batch-nodes is for grace and gcool"):
        GraphConfig(method="adameow", batch_nodes=64)
    with pytest.raises(ConfigError, match="unknown"):
        GraphConfig(method="dgi")
