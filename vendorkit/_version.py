"""The package version, written once: the build reads it (pyproject's ``dynamic``), and so
do ``vendorkit.__version__`` and the User-Agent."""

__version__ = "0.1.0"
