"""The `hub` command line, one module per command group (`main` adds them all).

Part of the composition root: it reads the environment once (load_settings) and hands values
down. Errors a user can act on print as one line and exit non-zero; no traceback."""

from hub.cli.main import main

__all__ = ["main"]
