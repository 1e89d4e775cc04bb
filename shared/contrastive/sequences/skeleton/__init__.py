"""Skeleton action sequences: HiCLR (Zhang, Lin, Liu, "Hierarchical Consistent Contrastive
Learning for Skeleton-Based Action Recognition with Growing Augmentations", AAAI 2023).

- :mod:`.graph` -- skeleton layouts (NTU RGB+D 25 joints, COCO 17 keypoints, edge lists) and the
  ST-GCN spatial-configuration adjacency;
- :mod:`.stgcn` -- the ST-GCN encoder (Yan, Xiong, Lin, AAAI 2018) in plain PyTorch;
- :mod:`.augment` -- batched skeleton augmentations and HiCLR's growing augmentation branches;
- :mod:`.functional` -- the maths: MoCo logits and directional distribution matching;
- :mod:`.hiclr` -- the MoCo model with a queue and the hierarchical consistency branches.

Sequences are tensors ``(N, C, T, V, M)``: batch, coordinates, frames, joints, persons.
"""
