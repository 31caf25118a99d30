"""Errors that end a command with one clear line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a file, a field, a value. Printed as one line, exit 2."""
