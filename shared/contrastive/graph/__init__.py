"""Graph contrastive methods of the core (``medcl.contrastive.graph``), on PyTorch Geometric.

- :mod:`.augment`: GRACE's views (edge dropping, feature masking);
- :mod:`.encoders`: the 2-layer GCN and projection head of GRACE / gCooL / POT;
- :mod:`.losses`: GRACE's node InfoNCE (through :func:`medcl.contrastive.functional.info_nce`),
  gCooL's DeCA and ReSC and its schedule;
- :mod:`.pot`: POT's interval bounds of a 2-layer GCN under an edge-drop budget and its
  compactness regulariser;
- :mod:`.hetero`: meta-paths on ``HeteroData`` and MEOW / AdaMEOW;
- :mod:`.sampling`: sampled neighbourhoods for mini-batch training.

Nothing here reads or writes files; the ``medcl core graph`` app does.
"""

from .augment import drop_edges, mask_features
from .encoders import GCN, ProjectionHead
from .losses import (
    community_assign,
    community_centroids,
    deca_loss,
    gcool_weights,
    grace_loss,
    node_cross_view_loss,
    resc_loss,
)
from .pot import (
    adjacency_bounds,
    compactness_lower_bound,
    drop_budget,
    gcn_interval_bounds,
    pot_regulariser,
)

__all__ = [
    "GCN",
    "ProjectionHead",
    "adjacency_bounds",
    "community_assign",
    "community_centroids",
    "compactness_lower_bound",
    "deca_loss",
    "drop_budget",
    "drop_edges",
    "gcn_interval_bounds",
    "gcool_weights",
    "grace_loss",
    "mask_features",
    "node_cross_view_loss",
    "pot_regulariser",
    "resc_loss",
]
