"""The single source of trigraph's version."""

__version__ = "0.2.0.dev0"
