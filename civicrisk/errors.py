"""The command line's own error: one line on stderr and exit 2 (civicrisk.cli.main)."""

from __future__ import annotations


class UsageError(Exception):
    """A bad combination of arguments, or a setting the command cannot use."""
