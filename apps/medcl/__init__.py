"""medcl: contrastive-learning research turned into tools for medical imaging and EEG.

The front door: ``medcl`` (or ``python -m medcl``) is the umbrella command; the application
groups (dbsam, pirads, mvcnet, sepclr) are found through the ``medcl.apps`` entry points and
imported only when invoked.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medcl")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
