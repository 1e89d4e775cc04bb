"""DB-SAM: dual-branch adapted Segment Anything for 2D and 3D medical image segmentation.

Paper: Qin et al., "DB-SAM: Delving into High Quality Universal Medical Image Segmentation",
MICCAI 2024, arXiv:2410.04172.
"""
