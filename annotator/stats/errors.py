"""The one error the statistics raise on the user's data (a label outside the categories, a unit coded twice).

It is a ValueError, so stats stays free of the rest of annotator; the CLI prints it as one line and exits
with status 2, like annotator's own user errors.
"""

from __future__ import annotations


class DataError(ValueError):
    """Codes that the statistics cannot take as they are: the message names the value and what to do."""

    exit_code = 2
