"""The one base of fisuras's own errors; the CLI shows them as a one-line message."""


class FisurasError(Exception):
    """A problem the user can fix (bad data, settings, a missing file or package).

    Its message says what and where. Each subclass also derives from the built-in it refines
    (``ValueError``, ``OSError``...), so ``except ValueError`` keeps catching it.
    """
