"""The one error type a user can cause through data: missing, empty or unreadable datasets."""


class DatasetError(Exception):
    """Raised with a one-line message that says what is wrong and what to do about it."""
