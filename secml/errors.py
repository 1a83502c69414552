"""Errors the CLI turns into one clear line and a non-zero exit (design.md, "Bad input")."""


class SecmlError(Exception):
    """A problem the user can fix (bad argument, missing file, port in use, ...)."""


def short(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to about ``limit`` characters: an error line quotes a bad value, it
    does not reprint a 20 KB one."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} characters)"
