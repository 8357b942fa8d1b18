"""The composition root: builds every adapter from Settings (imports vendor SDKs lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings import PROVIDERS_EMBED, Settings, split_provider
from retrieval.ports import Embedder, PromptIndex, SparseEncoder
from retrieval.search import Retriever

if TYPE_CHECKING:
    from retrieval.ingest import Ingestor


def build_embedder(settings: Settings) -> Embedder:
    """The embedder named by IMAGINE_EMBED_MODEL."""
    provider, model_id = split_provider(settings.embed_model, "IMAGINE_EMBED_MODEL", PROVIDERS_EMBED)
    if provider == "bedrock":
        from retrieval.adapters.bedrock_embedder import BedrockTitanEmbedder

        return BedrockTitanEmbedder(
            model_id=model_id,
            dimensions=settings.embed_dimensions,
            region=settings.aws_region,
            endpoint_url=settings.bedrock_endpoint_url,
        )
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(batch_size=settings.embed_batch_size)


def build_sparse_encoder() -> SparseEncoder:
    """The BM25 sparse encoder shared by both index adapters."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder

    return Bm25SparseEncoder()


def build_index(settings: Settings) -> PromptIndex:
    """Qdrant server at IMAGINE_QDRANT_URL, else the embedded Qdrant Edge index under IMAGINE_DATA_DIR."""
    if settings.qdrant_url:
        from retrieval.adapters.qdrant_index import QdrantClientPromptIndex, connect_qdrant

        client = connect_qdrant(settings.qdrant_url, settings.qdrant_api_key, settings.qdrant_timeout_s)
        return QdrantClientPromptIndex(client, settings.collection)
    from retrieval.adapters.edge_index import EdgePromptIndex

    return EdgePromptIndex(settings.index_dir)


def build_retriever(settings: Settings) -> Retriever:
    """A Retriever over the configured embedder and index."""
    return Retriever(build_embedder(settings), build_sparse_encoder(), build_index(settings))


def build_ingestor(settings: Settings) -> tuple[Ingestor, PromptIndex]:
    """An Ingestor over the configured embedder and index (the index is returned so callers close it)."""
    from retrieval.ingest import Ingestor
    from retrieval.safety import SafetyClassifier

    index = build_index(settings)
    classifier = SafetyClassifier(threshold=settings.nsfw_threshold)
    return Ingestor(build_embedder(settings), build_sparse_encoder(), index, classifier), index
