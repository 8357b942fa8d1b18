"""Stability AI Image Services on Bedrock: one InvokeModel call per edit of an existing image."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.drawing import image_bodies as bodies
from bot.drawing.bedrock_images import BedrockImageModel, Family
from bot.drawing.image_services import Service, prepared, service_body, service_for, services_for
from bot.engine.ports import EditRequest, GeneratedImage, ImageEditor, ImageRequest
from bot.engine.turn_errors import BotError, ModelConfigError

logger = logging.getLogger(__name__)


def _built_by_the_editor(request: ImageRequest) -> dict[str, Any]:
    """Image-service bodies come from image_services.service_body, never from an ImageRequest."""
    raise TypeError("image services are called through BedrockImageEditor.edit")


# the services answer like SD3.5 / Core / Ultra: {"seeds": [...], "finish_reasons": [...], "images": [...]}
IMAGE_SERVICES = Family(
    "stability-image-services",
    _built_by_the_editor,
    bodies.parse_stability_v2,
    1,
    lambda body: int(body.get("seed", 0)),
)


class BedrockImageEditor:
    """ImageEditor over Bedrock: each operation has its own model id, checked when the editor is built."""

    def __init__(
        self,
        models: Mapping[str, tuple[str, str]],
        region: str,
        endpoint_url: str | None = None,
        client: Any | None = None,
        max_attempts: int = 4,
    ) -> None:
        """`models`: operation -> (Bedrock model id, its setting); ModelConfigError for a wrong id."""
        self._models: dict[str, tuple[Service, BedrockImageModel]] = {}
        for operation, (model_id, variable) in models.items():
            bare = model_id.removeprefix("bedrock:").strip()
            service = service_for(bare)
            if service is None or service.operation != operation:
                choices = ", ".join(s.prefix for s in services_for(operation)) or "none"
                raise ModelConfigError(
                    f"{variable}=bedrock:{bare} is not a model for {operation.replace('_', ' ')}: use a "
                    f"Stability AI Image Services model ({choices}), e.g. bedrock:us.{choices.split(', ')[0]}"
                    "-v1:0"
                )
            model = BedrockImageModel(
                bare, region, endpoint_url, client, max_attempts, family=IMAGE_SERVICES, variable=variable
            )
            self._models[operation] = (service, model)

    @property
    def is_offline(self) -> bool:
        """Always False: this calls Bedrock."""
        return False

    def model_for(self, operation: str) -> str | None:
        """'bedrock:<id>' of the model doing `operation`, or None when none is set."""
        found = self._models.get(operation)
        return found[1].model_id if found else None

    def edit(self, request: EditRequest) -> GeneratedImage:
        """Fit the picture to the service's limits, call it once and return the edited image."""
        found = self._models.get(request.operation)
        if found is None:
            raise BotError(f"this bot has no model for {request.operation.replace('_', ' ')}")
        service, model = found
        picture = prepared(service, request.image)
        body = service_body(service, replace(request, image=picture.data))
        logger.debug("%s: %s on a %dx%d picture", model.model_id, service.name, picture.width, picture.height)
        return model.invoke_body(body, int(body.get("seed", 0)))[0]


class EditorByOperation:
    """An ImageEditor that hands each operation to its own editor (Bedrock for some, offline for others)."""

    def __init__(self, editors: Mapping[str, ImageEditor]) -> None:
        """`editors`: operation -> the editor that does it."""
        self._editors = dict(editors)

    def model_for(self, operation: str) -> str | None:
        """The model of the editor doing `operation`, or None."""
        editor = self._editors.get(operation)
        return editor.model_for(operation) if editor is not None else None

    def edit(self, request: EditRequest) -> GeneratedImage:
        """Edit with the operation's editor."""
        editor = self._editors.get(request.operation)
        if editor is None:
            raise BotError(f"this bot has no model for {request.operation.replace('_', ' ')}")
        return editor.edit(request)
