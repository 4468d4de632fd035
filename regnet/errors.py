"""The one exception type that means "the user gave us something wrong".

The CLI prints a `UserError` as one line (``error: <message>``) and exits 2; anything else is a bug
and keeps its traceback. Messages name the file or field at fault.
"""


class UserError(Exception):
    """Bad input, a missing file, a refused action: reported in one line, never a traceback."""
