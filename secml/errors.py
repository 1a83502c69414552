"""Errors the CLI turns into one clear line and a non-zero exit (design.md, "Bad input")."""


class SecmlError(Exception):
    """A problem the user can fix (bad argument, missing file, port in use, ...)."""
