"""Sequential recommendation (``medcl core rec``): SASRec, CL4SRec's augmentations and MCLRec.

Modules (import them directly; this package imports nothing):

- :mod:`.metrics`: full-ranking HR@K and NDCG@K.
- :mod:`.sasrec`: the SASRec encoder (Kang & McAuley, ICDM 2018).
- :mod:`.augment`: CL4SRec's crop, mask and reorder (Xie et al., ICDE 2022).
- :mod:`.losses`: the sequence InfoNCE (through the core kernel), MCLRec's learnable augmenters,
  its contrastive losses and margin regulariser (Qin et al., SIGIR 2023).
- :mod:`.meta`: MCLRec's three-step meta-optimisation (``torch.func`` functional update).
"""
