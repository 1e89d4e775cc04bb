"""MVCNet: multi-view contrastive CNN+Transformer decoder of motor-imagery EEG.

Paper: Wang, Li, Chen, Wu, "MVCNet: Multi-View Contrastive Network for Motor Imagery
Classification", Knowledge-Based Systems 2025, arXiv:2502.17482.
"""
