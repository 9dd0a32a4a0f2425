"""wormhunt: incident response for SMB-worm and cryptominer outbreaks on Windows networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wormhunt")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"
