"""The contrastive core of medcl: pure PyTorch, no file formats, no apps.

``functional`` holds the maths, ``losses`` the loss modules, ``heads`` the projection heads,
``prototypes`` SwAV's prototypes, Sinkhorn-Knopp and queues, ``momentum`` the momentum encoder
and FIFO feature queue, ``distributed`` the all-gather, ``engine`` the Lightning Fabric training
loop and ``probe`` the frozen-embedding evaluation. Import submodules directly; this package
imports nothing heavy.
"""
