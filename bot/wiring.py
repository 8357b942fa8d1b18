"""The composition root: builds every adapter from Config (imports vendor SDKs lazily)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import (
    PROVIDERS_CHAT,
    PROVIDERS_EDIT,
    PROVIDERS_EMBED,
    PROVIDERS_IMAGE,
    Config,
    ConfigError,
    edit_model_variable,
    split_provider,
)
from bot.engine.ports import ChatModel, ImageEditor, ImageModel, PictureDescriber
from retrieval.concept_plan import ConceptPlanner
from retrieval.index_ports import Embedder, PromptIndex, SparseEncoder
from retrieval.search import Retriever

if TYPE_CHECKING:
    from bot.engine.conversation import Conversation
    from bot.engine.policy import PromptPolicy
    from bot.scheduling.fair_use import FairUseLimits
    from bot.slack.intake.health import HealthReport, Readiness
    from bot.slack.services import Services
    from retrieval.index_share import IndexShareServer
    from retrieval.ingest import Ingestor
    from storage.thread_store import SqlThreadStore

logger = logging.getLogger(__name__)


def build_embedder(config: Config) -> Embedder:
    """The embedder named by IMAGINE_EMBED_MODEL."""
    provider, model_id = split_provider(config.embed_model, "IMAGINE_EMBED_MODEL", PROVIDERS_EMBED)
    if provider == "bedrock":
        from retrieval.adapters.bedrock_embedder import BedrockTitanEmbedder

        return BedrockTitanEmbedder(
            model_id=model_id,
            dimensions=config.embed_dimensions,
            region=config.aws_region,
            endpoint_url=config.bedrock_endpoint_url,
        )
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(batch_size=config.embed_batch_size)


def build_sparse_encoder() -> SparseEncoder:
    """The BM25 sparse encoder shared by both index adapters."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder

    return Bm25SparseEncoder()


def build_index(config: Config) -> PromptIndex:
    """Qdrant server at IMAGINE_QDRANT_URL, else the embedded Qdrant Edge index under IMAGINE_DATA_DIR."""
    if config.qdrant_url:
        from retrieval.adapters.qdrant_index import QdrantClientPromptIndex, connect_qdrant

        client = connect_qdrant(config.qdrant_url, config.qdrant_api_key, config.qdrant_timeout_s)
        return QdrantClientPromptIndex(
            client,
            config.collection,
            shard_number=config.qdrant_shards,
            replication_factor=config.qdrant_replication,
        )
    from retrieval.adapters.edge_index import EdgePromptIndex

    return EdgePromptIndex(config.index_dir)


def build_retriever(config: Config) -> Retriever:
    """A Retriever over the configured embedder and index (and concept planner, if one is configured)."""
    return Retriever(
        build_embedder(config), build_sparse_encoder(), build_index(config), build_concept_planner(config)
    )


def build_concept_planner(config: Config) -> ConceptPlanner | None:
    """Claude as the search's concept planner when IMAGINE_CONCEPT_PLANNER names a Bedrock model."""
    if config.concept_planner == "off":
        return None
    from bot.writing.concept_planner import ClaudeConceptPlanner

    _, model_id = split_provider(config.concept_planner, "IMAGINE_CONCEPT_PLANNER", ("bedrock",))
    return ClaudeConceptPlanner(model_id, region=config.aws_region, endpoint_url=config.bedrock_endpoint_url)


def build_ingestor(config: Config) -> tuple[Ingestor, PromptIndex]:
    """An Ingestor over the configured embedder and index (the index is returned so callers close it)."""
    from retrieval.ingest import Ingestor
    from retrieval.safety import SafetyClassifier

    index = build_index(config)
    classifier = SafetyClassifier(threshold=config.nsfw_threshold)
    return Ingestor(build_embedder(config), build_sparse_encoder(), index, classifier), index


def build_policy(config: Config) -> PromptPolicy:
    """The prompt policy: built-in refusals (minor-age logic from the lexicon) and IMAGINE_DENYLIST."""
    from bot.engine.policy import Denylist, PromptPolicy
    from retrieval.safety import SafetyClassifier

    denylist = Denylist()
    if config.denylist is not None:
        try:
            denylist = Denylist.from_file(config.denylist)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"IMAGINE_DENYLIST={config.denylist} cannot be used: {exc}") from None
        logger.info("denylist %s: %d terms", config.denylist, len(denylist))
    return PromptPolicy(denylist, SafetyClassifier())


def modifier_stats_path(config: Config) -> Path:
    """Where ingest saves the modifier statistics mined from the collection."""
    return config.data_dir / "modifiers" / f"{config.collection}.json"


def mine_modifier_stats(index: PromptIndex, config: Config) -> int:
    """Mine style-modifier statistics from the whole stored library (for the offline composer); how many."""
    from retrieval.modifiers import mine_modifiers

    stats = mine_modifiers(index.iter_prompts())
    stats.save(modifier_stats_path(config))
    return len(stats)


def build_index_share(config: Config, services: Services) -> IndexShareServer | None:
    """serve's share of its embedded index with CLI commands (None with a Qdrant server: no single opener)."""
    from retrieval.index_ports import IndexSpec
    from retrieval.index_share import HeldIndex, IndexShareServer, socket_path
    from retrieval.ingest import Ingestor
    from retrieval.safety import SafetyClassifier

    retriever = services.conversation.retrieval
    if config.qdrant_url or not isinstance(retriever, Retriever):
        return None
    spec = IndexSpec(retriever.embedder.model_id, retriever.embedder.dimension)
    held = HeldIndex(retriever.index, spec)

    def ingestor() -> Ingestor:
        classifier = SafetyClassifier(threshold=config.nsfw_threshold)
        return Ingestor(retriever.embedder, retriever.sparse_encoder, held, classifier)

    return IndexShareServer(
        socket_path(config.index_dir), retriever, ingestor, lambda: mine_modifier_stats(held, config)
    )


def build_chat_model(config: Config) -> ChatModel:
    """The chat model named by IMAGINE_CHAT_MODEL ('offline' or 'bedrock:<model-id>')."""
    provider, model_id = split_provider(config.chat_model, "IMAGINE_CHAT_MODEL", PROVIDERS_CHAT)
    if provider == "bedrock":
        from bot.writing.claude import BedrockChatModel

        return BedrockChatModel(model_id, region=config.aws_region, endpoint_url=config.bedrock_endpoint_url)
    from bot.writing.offline_composer import OfflineComposer
    from retrieval.modifiers import ModifierStats

    path = modifier_stats_path(config)
    stats = None
    if path.exists():
        try:
            stats = ModifierStats.load(path)
        except ValueError as exc:
            logger.warning("%s; the offline composer uses its built-in modifiers (re-run ingest)", exc)
    return OfflineComposer(stats)


def build_image_model(config: Config, model: str | None = None) -> ImageModel:
    """The image model named by IMAGINE_IMAGE_MODEL (or a per-turn override)."""
    value = model or config.image_model
    provider, model_id = split_provider(value, "IMAGINE_IMAGE_MODEL", PROVIDERS_IMAGE)
    if provider == "bedrock":
        from bot.drawing.bedrock_images import BedrockImageModel

        return BedrockImageModel(model_id, region=config.aws_region, endpoint_url=config.bedrock_endpoint_url)
    if provider == "sagemaker":
        from bot.drawing.bedrock_images import SageMakerSdxlModel

        return SageMakerSdxlModel(model_id, region=config.aws_region)
    from bot.drawing.offline_images import OfflinePreviewImageModel

    return OfflinePreviewImageModel()


def build_image_editor(config: Config) -> ImageEditor:
    """The image services (IMAGINE_UPSCALE_MODEL … IMAGINE_STYLE_MODEL): Bedrock's, offline, or a mix.

    Each Bedrock id is checked now, like IMAGINE_IMAGE_MODEL: ModelConfigError names the setting.
    """
    from bot.drawing.offline_edits import OfflineImageEditor

    offline = OfflineImageEditor()
    bedrock: dict[str, tuple[str, str]] = {}
    for operation, value in config.edit_models().items():
        variable = edit_model_variable(operation)
        provider, model_id = split_provider(value, variable, PROVIDERS_EDIT)
        if provider == "bedrock":
            bedrock[operation] = (model_id, variable)
    if not bedrock:
        return offline
    from bot.drawing.bedrock_edits import BedrockImageEditor, EditorByOperation

    real = BedrockImageEditor(bedrock, region=config.aws_region, endpoint_url=config.bedrock_endpoint_url)
    if len(bedrock) == len(config.edit_models()):
        return real
    return EditorByOperation({op: real if op in bedrock else offline for op in config.edit_models()})


def build_describer(config: Config, chat: ChatModel | None = None) -> PictureDescriber:
    """The vision model that describes pictures: the Bedrock chat model (Claude), else the offline one."""
    provider, model_id = split_provider(config.chat_model, "IMAGINE_CHAT_MODEL", PROVIDERS_CHAT)
    if provider == "bedrock":
        from bot.writing.claude import BedrockChatModel

        if isinstance(chat, BedrockChatModel):
            return chat  # one set of clients for prompts and pictures
        return BedrockChatModel(model_id, region=config.aws_region, endpoint_url=config.bedrock_endpoint_url)
    from bot.writing.offline_describer import OfflineDescriber

    return OfflineDescriber()


def image_model_factory(config: Config) -> Callable[[str], ImageModel]:
    """Builds (once each) the image models a turn may name with --model or a default."""
    from bot.engine.turn_errors import BotError

    built: dict[str, ImageModel] = {}
    lock = threading.Lock()

    def image_model(value: str) -> ImageModel:
        with lock:
            if value not in built:
                try:
                    built[value] = build_image_model(config, value)
                except ConfigError as exc:
                    raise BotError(
                        f"unknown image model {value!r}; use offline, bedrock:<id> or sagemaker:<endpoint>"
                    ) from exc
            return built[value]

    return image_model


def build_thread_store(config: Config) -> tuple[SqlThreadStore, Callable[[], None]]:
    """The SQL thread store, migrated to head, and a function that disposes its engine."""
    from storage.db import create_db_engine, migrate, session_factory
    from storage.thread_store import SqlThreadStore

    engine = create_db_engine(config.sqlalchemy_url)
    migrate(engine)
    return SqlThreadStore(session_factory(engine)), engine.dispose


def build_conversation(config: Config) -> tuple[Conversation, Callable[[], None]]:
    """The conversation engine over every configured adapter, and a function that releases them."""
    conversation, _, close = _engine(config)
    return conversation, close


def build_services(config: Config) -> tuple[Services, Callable[[], None]]:
    """What the Slack listeners need (engine, stores, fair use), and a function that releases it."""
    from bot.scheduling.fair_use import FairUseLimits

    conversation, store, close = _engine(config)
    limits = FairUseLimits(config.max_concurrent_jobs, config.user_queue_cap, config.daily_image_quota)
    services = assemble_services(conversation, store, limits, job_stale_s=config.job_stale_s)

    def close_all() -> None:
        if services.jobs is not None:
            services.jobs.close()
        close()

    return services, close_all


def assemble_services(
    conversation: Conversation,
    store: SqlThreadStore,
    limits: FairUseLimits,
    logger: logging.Logger | None = None,
    *,
    job_stale_s: float = 120.0,
) -> Services:
    """Services over one database: the thread store's sessions shared by every other store."""
    from bot.scheduling.fair_use import FairUse
    from bot.scheduling.job_journal import JobTracker, worker_name
    from bot.slack.services import Services
    from storage.defaults_store import SqlDefaultsStore
    from storage.feedback_store import SqlFeedbackStore
    from storage.job_store import SqlJobJournal
    from storage.ledger import SqlEventLedger, SqlUsageCounters

    sessions = store.sessions
    journal = SqlJobJournal(sessions, worker_name())  # the cap and the quota count its rows in every replica
    return Services(
        conversation=conversation,
        threads=store,
        defaults=SqlDefaultsStore(sessions),
        feedback=SqlFeedbackStore(sessions),
        ledger=SqlEventLedger(sessions),
        fair_use=FairUse(limits, SqlUsageCounters(sessions), jobs=journal, stale_after_s=job_stale_s),
        recent=store,
        logger=logger or logging.getLogger("bot.app"),
        jobs=JobTracker(journal, job_stale_s / 8, job_stale_s),
    )


HEALTH_QUERY = "health check"  # a sparse (BM25) query: touches the index without calling the embedder


def build_health(services: Services, readiness: Readiness | None = None) -> Callable[[], HealthReport]:
    """GET /healthz's checks: warm start done (with `readiness`), `SELECT 1` on the app's database and one
    sparse query on the prompt index."""
    from sqlalchemy import text

    from bot.slack.intake.health import run_checks
    from retrieval.index_ports import SearchMode
    from storage.thread_store import SqlThreadStore

    threads = services.threads
    search = services.conversation.retrieval

    def database() -> None:
        if not isinstance(threads, SqlThreadStore):
            return  # an in-memory store has nothing to reach
        with threads.sessions() as session:
            session.execute(text("SELECT 1")).scalar_one()

    def index() -> None:
        if isinstance(search, Retriever):
            search.search(HEALTH_QUERY, k=1, mode=SearchMode.SPARSE, diversify=False)
        else:
            search.search(HEALTH_QUERY, k=1)

    checks: dict[str, Callable[[], object]] = {"database": database, "index": index}
    if readiness is not None:
        checks = {"ready": readiness.check, **checks}
    return lambda: run_checks(checks)


def _engine(config: Config) -> tuple[Conversation, SqlThreadStore, Callable[[], None]]:
    """Build the engine and its thread store once."""
    from bot.engine.contact_sheet import contact_sheet
    from bot.engine.conversation import Conversation

    retriever = build_retriever(config)
    store, dispose = build_thread_store(config)
    chat = build_chat_model(config)
    conversation = Conversation(
        retriever,
        chat,
        build_image_model(config),
        store,
        config.images_dir,
        contact_sheet=contact_sheet,
        image_models=image_model_factory(config),
        policy=build_policy(config),
        editor=build_image_editor(config),
        describer=build_describer(config, chat),
    )

    def close() -> None:
        retriever.close()
        dispose()

    return conversation, store, close
