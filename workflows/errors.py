"""The one exception type for bad user input."""


class InputError(ValueError):
    """Bad input: the message names the input, what is wrong and what to do about it."""
