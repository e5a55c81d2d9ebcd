"""The one exception type dmkeras raises for problems in the user's input."""


class DmkerasError(ValueError):
    """Bad input or configuration: the message names the problem in one line.

    `launch/` entry points print it as `error: <message>` and exit with status 2
    instead of showing a stack trace.
    """
