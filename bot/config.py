"""Config from environment variables (and `.env` in development), validated at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROVIDERS_EMBED = ("local", "bedrock")
PROVIDERS_CHAT = ("bedrock", "offline")
PROVIDERS_IMAGE = ("bedrock", "sagemaker", "offline")
PROVIDERS_EDIT = ("bedrock", "offline")
DEFAULT_CHAT_MODEL = "bedrock:us.anthropic.claude-haiku-4-5-20251001-v1:0"
DEFAULT_IMAGE_MODEL = "bedrock:stability.sd3-5-large-v1:0"
TITAN_DIMENSIONS = (256, 512, 1024)
# Stability AI Image Services on Bedrock (us. cross-Region profiles), one setting per edit the bot makes:
# operation -> (config field, default model id). Unset, they follow IMAGINE_IMAGE_MODEL: Bedrock when it
# is bedrock:…, else the offline stand-ins.
EDIT_MODELS: dict[str, tuple[str, str]] = {
    "upscale": ("upscale_model", "us.stability.stable-fast-upscale-v1:0"),
    "remove_background": ("remove_background_model", "us.stability.stable-image-remove-background-v1:0"),
    "search_replace": ("search_replace_model", "us.stability.stable-image-search-replace-v1:0"),
    "recolor": ("recolor_model", "us.stability.stable-image-search-recolor-v1:0"),
    "erase": ("erase_model", "us.stability.stable-image-erase-object-v1:0"),
    "outpaint": ("outpaint_model", "us.stability.stable-outpaint-v1:0"),
    "sketch": ("sketch_model", "us.stability.stable-image-control-sketch-v1:0"),
    "style": ("style_model", "us.stability.stable-image-style-guide-v1:0"),
}


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the environment variable."""


def default_data_dir() -> Path:
    """Where all local state lives unless IMAGINE_DATA_DIR says otherwise."""
    return Path.home() / ".local" / "share" / "imagine-bot"


def split_provider(value: str, variable: str, providers: tuple[str, ...]) -> tuple[str, str]:
    """Split 'provider:model-id' ('offline' alone is allowed), raising ConfigError naming `variable`."""
    if value == "offline" and "offline" in providers:
        return "offline", "offline"
    provider, sep, model_id = value.partition(":")
    if not sep or not model_id or provider not in providers:
        raise ConfigError(
            f"{variable}={value!r} is not valid: use 'provider:model-id' with provider one of "
            f"{', '.join(providers)} (e.g. local:all-MiniLM-L6-v2)"
        )
    return provider, model_id


class Config(BaseSettings):
    """Every setting of imagine-bot; each field is read from the IMAGINE_* variable of its name."""

    model_config = SettingsConfigDict(
        env_prefix="IMAGINE_", env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    embed_model: str = "local:all-MiniLM-L6-v2"
    embed_dimensions: int = 1024
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_timeout_s: float = 5.0
    qdrant_shards: int = Field(default=1, ge=1, le=1024)  # IMAGINE_QDRANT_SHARDS: new server collections
    qdrant_replication: int = Field(default=1, ge=1, le=64)  # IMAGINE_QDRANT_REPLICATION
    collection: str = "prompts"
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("IMAGINE_AWS_REGION", "AWS_REGION")
    )
    bedrock_endpoint_url: str | None = None
    nsfw_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    prompt_nsfw_max: float = Field(default=0.5, ge=0.0, le=1.0)
    image_nsfw_max: float = Field(default=0.5, ge=0.0, le=1.0)
    embed_batch_size: int = Field(default=16, ge=1, le=1024)
    database_url: str | None = None
    max_concurrent_jobs: int = Field(default=2, ge=1, le=256)
    user_queue_cap: int = Field(default=3, ge=1, le=100)
    daily_image_quota: int = Field(default=0, ge=0)
    job_stale_s: float = Field(default=120.0, ge=2.0, le=86_400.0)
    drain_s: float = Field(default=25.0, ge=0.0, le=3_600.0)  # IMAGINE_DRAIN_S: running turns' grace on stop
    warm_up: bool = True  # IMAGINE_WARM_UP: serve loads models and clients before it says ready
    chat_model: str = "offline"
    # IMAGINE_CONCEPT_PLANNER: 'off' or 'bedrock:<id>': Claude writes each idea's concepts for the search
    concept_planner: str = "off"
    image_model: str = "offline"
    # IMAGINE_UPSCALE_MODEL … IMAGINE_STYLE_MODEL: 'offline' or 'bedrock:<id>' per edit (see EDIT_MODELS)
    upscale_model: str | None = None
    remove_background_model: str | None = None
    search_replace_model: str | None = None
    recolor_model: str | None = None
    erase_model: str | None = None
    outpaint_model: str | None = None
    sketch_model: str | None = None
    style_model: str | None = None
    log_format: str = Field(default="text", pattern="^(text|json)$")  # IMAGINE_LOG_FORMAT: text | json
    denylist: Path | None = None  # IMAGINE_DENYLIST: workspace denylist file (bot/engine/policy.py)

    @field_validator("denylist", mode="before")
    @classmethod
    def _denylist_is_a_file(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not Path(str(value)).is_file():
            raise ValueError(f"no such file: {value} (a text file with one term or phrase a line)")
        return value

    @field_validator("chat_model")
    @classmethod
    def _chat_model_parses(cls, value: str) -> str:
        split_provider(value, "IMAGINE_CHAT_MODEL", PROVIDERS_CHAT)
        return value

    @field_validator("concept_planner")
    @classmethod
    def _planner_parses(cls, value: str) -> str:
        value = value.strip() or "off"
        if value != "off":
            split_provider(value, "IMAGINE_CONCEPT_PLANNER", ("bedrock",))
        return value

    @field_validator("image_model")
    @classmethod
    def _image_model_parses(cls, value: str) -> str:
        split_provider(value, "IMAGINE_IMAGE_MODEL", PROVIDERS_IMAGE)
        return value

    @field_validator(*(name for name, _ in EDIT_MODELS.values()))
    @classmethod
    def _edit_model_parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        split_provider(value.strip(), f"IMAGINE_{str(info.field_name).upper()}", PROVIDERS_EDIT)
        return value.strip()

    @field_validator("embed_model")
    @classmethod
    def _embed_model_parses(cls, value: str) -> str:
        split_provider(value, "IMAGINE_EMBED_MODEL", PROVIDERS_EMBED)
        return value

    @field_validator("embed_dimensions")
    @classmethod
    def _titan_dimensions(cls, value: int) -> int:
        if value not in TITAN_DIMENSIONS:
            raise ValueError(f"must be one of {TITAN_DIMENSIONS}")
        return value

    @field_validator("qdrant_url", "qdrant_api_key", "bedrock_endpoint_url", "database_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    def edit_models(self) -> dict[str, str]:
        """Operation -> 'offline' or 'bedrock:<id>' per image edit (unset: follows the image model)."""
        return edit_models_for(
            self.image_model, {op: getattr(self, name) for op, (name, _) in EDIT_MODELS.items()}
        )

    @property
    def index_dir(self) -> Path:
        """Directory of the embedded Qdrant Edge index."""
        return self.data_dir / "index" / self.collection

    @property
    def sqlalchemy_url(self) -> str:
        """IMAGINE_DATABASE_URL, or a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'imagine.db'}"

    @property
    def images_dir(self) -> Path:
        """Where generated images are written."""
        return self.data_dir / "images"


def edit_model_variable(operation: str) -> str:
    """The environment variable that names the model of an edit, e.g. IMAGINE_UPSCALE_MODEL."""
    return f"IMAGINE_{EDIT_MODELS[operation][0].upper()}"


def edit_models_for(image_model: str, chosen: dict[str, str | None]) -> dict[str, str]:
    """Each edit's provider string: the one set, else Bedrock's default when `image_model` is on Bedrock."""
    follows = "bedrock" if image_model.startswith("bedrock:") else "offline"
    return {
        operation: chosen.get(operation) or (f"bedrock:{default}" if follows == "bedrock" else "offline")
        for operation, (_, default) in EDIT_MODELS.items()
    }


def load_config() -> Config:
    """Read config from the environment, turning validation errors into one ConfigError line."""
    try:
        return Config()
    except ConfigError:
        raise
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "IMAGINE_" + "_".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None
