"""BM25 sparse encoder on qdrant_edge's built-in `Bm25` (english tokenizer, stemmer and stopwords)."""

from __future__ import annotations

from qdrant_edge import Bm25, Bm25Config

from retrieval.index_ports import SparseVector

DEFAULT_LANGUAGE = "english"
# Mean count of non-stopword terms per prompt in the shared 79k library (14.5); qdrant's default of 256
# assumes long documents and would all but switch off length normalization for prompts.
PROMPT_AVG_LEN = 15.0


class Bm25SparseEncoder:
    """`SparseEncoder` port: BM25 term-frequency weights per hashed token; the index applies IDF.

    Documents get `(k, b, avg_len)`-saturated term frequencies, queries a weight of 1.0 per unique term.
    Both index adapters store exactly these vectors, so their sparse scores agree. Changing `avg_len`
    (or `k`, `b`, `language`) changes the stored document weights: re-ingest after changing them.
    The underlying Rust model is stateless after construction and safe to share between threads.
    """

    def __init__(
        self,
        *,
        language: str = DEFAULT_LANGUAGE,
        k: float | None = None,
        b: float | None = None,
        avg_len: float | None = PROMPT_AVG_LEN,
    ) -> None:
        """Build the model; None keeps qdrant's BM25 defaults (k=1.2, b=0.75, avg_len=256)."""
        self._bm25 = Bm25(Bm25Config(k=k, b=b, avg_len=avg_len, language=language))

    def encode_document(self, text: str) -> SparseVector:
        """Term-frequency weights of an indexed prompt (empty when it holds only stopwords)."""
        vector = self._bm25.embed_document(text)
        return SparseVector(indices=list(vector.indices), values=list(vector.values))

    def encode_query(self, text: str) -> SparseVector:
        """Unit weights of the query's terms (empty when it holds only stopwords)."""
        vector = self._bm25.embed_query(text)
        return SparseVector(indices=list(vector.indices), values=list(vector.values))
