"""The one exception type dmkeras raises for problems in the user's input."""


class DmkerasError(ValueError):
    """Bad input or configuration: the message names the problem in one line.

    `launch/` entry points print it as `error: <message>` and exit with status 2
    instead of showing a stack trace.
    """


class TrainingDiverged(DmkerasError):
    """A train step returned a non-finite loss: the run stops at that step, before the epoch is
    checkpointed, so a resume starts from the last finite epoch."""
