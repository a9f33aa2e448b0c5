"""The package version, in one place (read by the package face and run records)."""

__version__ = "0.1.0"
