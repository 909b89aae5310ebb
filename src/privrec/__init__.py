"""privrec: what does each level of privacy cost a recommender system, and who pays for it?"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("privrec")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
