"""Errors of the retrieval package, each with a message a user can act on."""


class RetrievalError(Exception):
    """Base class of every retrieval error; str(error) is a one-line message for the user."""


class IndexMismatchError(RetrievalError):
    """The index was built with another embedding model or dimension."""


class IndexUnavailableError(RetrievalError):
    """The index cannot be reached or opened."""


class IndexMissingError(RetrievalError):
    """No index exists yet: run `imagine-bot ingest` first."""


class EmbeddingError(RetrievalError):
    """The embedding model failed or is not installed."""


class IngestError(RetrievalError):
    """An input file cannot be read as a prompt library."""


class EmptyQueryError(RetrievalError):
    """The search query has no text."""
