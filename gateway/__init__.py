"""The gateway core: store, router, runtime, admin surface."""

__version__ = "0.1.0"
