"""SepCLR: contrastive analysis separating common from salient patterns (healthy background vs
diseased target).

Paper: Louiset et al., "Separating common from salient patterns with Contrastive Representation
Learning", ICLR 2024, arXiv:2402.11928.
"""
