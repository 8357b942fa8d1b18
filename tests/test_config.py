"""Config: defaults, env vars, and failures that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, ConfigError, load_config


def test_defaults_are_the_embedded_offline_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGINE_DATA_DIR")
    config = load_config()
    assert config.embed_model == "local:all-MiniLM-L6-v2"
    assert config.qdrant_url is None
    assert config.collection == "prompts"
    assert config.data_dir == Path.home() / ".local" / "share" / "imagine-bot"
    assert config.index_dir == config.data_dir / "index" / "prompts"


def test_env_vars_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IMAGINE_COLLECTION=from_dotenv\nIMAGINE_QDRANT_URL=\n")
    monkeypatch.setenv("IMAGINE_EMBED_MODEL", "bedrock:amazon.titan-embed-text-v2:0")
    monkeypatch.setenv("IMAGINE_EMBED_DIMENSIONS", "512")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    config = load_config()
    assert config.collection == "from_dotenv"
    assert config.qdrant_url is None  # blank means unset
    assert (config.embed_model, config.embed_dimensions, config.aws_region) == (
        "bedrock:amazon.titan-embed-text-v2:0",
        512,
        "eu-central-1",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGINE_EMBED_MODEL", "all-MiniLM"),
        ("IMAGINE_EMBED_MODEL", "openai:text-embedding-3"),
        ("IMAGINE_EMBED_DIMENSIONS", "384"),
        ("IMAGINE_EMBED_DIMENSIONS", "lots"),
        ("IMAGINE_NSFW_THRESHOLD", "2"),
        ("IMAGINE_QDRANT_TIMEOUT_S", "soon"),
        ("IMAGINE_CONCEPT_PLANNER", "claude"),
        ("IMAGINE_CONCEPT_PLANNER", "offline"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_config()


def test_settings_are_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError, match="frozen"):
        config.collection = "other"


def test_image_services_follow_the_image_model_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import EDIT_MODELS
    from bot.drawing.bedrock_edits import BedrockImageEditor, EditorByOperation
    from bot.drawing.offline_edits import OfflineImageEditor
    from bot.wiring import build_image_editor

    offline = load_config()
    assert set(offline.edit_models().values()) == {"offline"}
    assert isinstance(build_image_editor(offline), OfflineImageEditor)
    monkeypatch.setenv("IMAGINE_IMAGE_MODEL", "bedrock:stability.sd3-5-large-v1:0")
    monkeypatch.setenv("IMAGINE_ERASE_MODEL", "offline")
    chosen = load_config().edit_models()
    assert (
        chosen["upscale"] == "bedrock:us.stability.stable-fast-upscale-v1:0" and chosen["erase"] == "offline"
    )
    assert chosen.keys() == EDIT_MODELS.keys()
    mixed = build_image_editor(load_config())
    assert isinstance(mixed, EditorByOperation)
    assert (mixed.model_for("erase"), mixed.model_for("style")) == (
        "offline",
        "bedrock:us.stability.stable-image-style-guide-v1:0",
    )
    monkeypatch.delenv("IMAGINE_ERASE_MODEL")
    assert isinstance(build_image_editor(load_config()), BedrockImageEditor)


def test_a_wrong_image_service_setting_is_named_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.engine.turn_errors import ModelConfigError
    from bot.wiring import build_image_editor

    monkeypatch.setenv("IMAGINE_UPSCALE_MODEL", "sagemaker:my-endpoint")
    with pytest.raises(ConfigError, match="IMAGINE_UPSCALE_MODEL"):
        load_config()
    monkeypatch.setenv("IMAGINE_UPSCALE_MODEL", "bedrock:us.stability.stable-image-erase-object-v1:0")
    with pytest.raises(
        ModelConfigError, match=r"IMAGINE_UPSCALE_MODEL=bedrock:us\.stability\.stable-image-erase"
    ):
        build_image_editor(load_config())
