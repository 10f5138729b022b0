"""The one exception type for bad user input (config, CSV, CLI flags).

The CLI turns it into a one-line message and exit code 2; nothing else of a
traceback reaches the user for input they can fix.
"""


class SweeperInputError(ValueError):
    """Bad input: the message names the field, the value, and what to do."""

    def __init__(self, field: str, value: object, fix: str):
        self.field, self.value, self.fix = field, value, fix
        super().__init__(f"{field}: got {value!r}; {fix}")
