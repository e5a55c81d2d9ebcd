"""The one exception type dmkeras raises for problems in the user's input."""


class DmkerasError(ValueError):
    """Bad input or configuration: the message names the problem in one line.

    `launch/` entry points print it as `error: <message>` and exit with status 2
    instead of showing a stack trace.
    """


class TrainingDiverged(DmkerasError):
    """A train step returned a non-finite loss: the run stops at that step, before the epoch is
    checkpointed, so a resume starts from the last finite epoch."""


class ConfigError(DmkerasError):
    """A bad field of a TrainConfig or AuditConfig, or a bad argument of a library function (export's
    allow_unfinished). The message names config fields as they are spelt in Python ("lambda_u must be >= 0"); `fields` lists the ones it names, so that launch/
    can show the same message in its flags' terms (`as_flags`: "--lambda_u must be >= 0")."""

    def __init__(self, message: str, fields=()):
        super().__init__(message)
        self.fields = tuple(dict.fromkeys(fields))

    def as_flags(self) -> str:
        """The message with every named field written as its command-line flag (--field)."""
        import re

        text = str(self)
        for name in sorted(self.fields, key=len, reverse=True):
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(?!\w)", f"--{name}", text)
        return text
