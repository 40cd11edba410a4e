"""Subcommands of ``renraku``: each module here defines ``register(subparsers)``."""
