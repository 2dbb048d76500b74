"""Errors that stop a role from starting, reported as one line."""


class StartupError(Exception):
    """The role cannot start (missing database, unreadable key file, ...)."""
