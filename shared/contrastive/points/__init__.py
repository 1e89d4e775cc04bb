"""Point clouds in the contrastive core: chunked kNN, PointNet / DGCNN backbones, plane + DBSCAN
segments, FAC's foreground-aware contrasts and the PointContrast / cloud-SimCLR baselines."""

from .backbones import DGCNN, PointNet, build_point_backbone
from .knn import knn, knn_dense
from .losses import (
    SiameseCorrespondence,
    cloud_nt_xent,
    correspondence_loss,
    fac_fgbg_loss,
    fac_region_loss,
    match_within_segments,
    point_info_nce,
    segment_features,
)
from .methods import PointMethod, ViewPair, build_point_method
from .segments import Segments, ransac_plane, segment_cloud

__all__ = [
    "DGCNN", "PointNet", "build_point_backbone", "knn", "knn_dense", "SiameseCorrespondence",
    "cloud_nt_xent", "correspondence_loss", "fac_fgbg_loss", "fac_region_loss",
    "match_within_segments", "point_info_nce", "segment_features", "PointMethod", "ViewPair",
    "build_point_method", "Segments", "ransac_plane", "segment_cloud",
]
