"""``medcl core``: the command groups of the contrastive core's general methods.

One sub-group per modality (``medcl core image``, and later ``graph``, ``points``, ``t2i``,
...): data options, recipes and comparisons. The maths lives in :mod:`medcl.contrastive`; this
package turns files and packaged datasets into tensors and runs the engine.
"""
