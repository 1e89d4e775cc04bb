"""PI-RADS v2 prostate zones (PZ, TZ, DPU, AFS) with a co-trained dual-path 3D CNN.

Paper: Das, Ghosh, Stober, "PI-RADS v2 Compliant Automated Segmentation of Prostate Zones Using
co-training Motivated Multi-task Dual-Path CNN", 2023, arXiv:2309.12970.
"""
