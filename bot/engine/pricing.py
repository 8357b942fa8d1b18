"""Estimated prices of the hosted models, for the cost field of the per-turn log line.

ESTIMATES ONLY, not a bill: AWS Bedrock on-demand list prices in us-east-1 as published on
https://aws.amazon.com/bedrock/pricing/ (checked 2025-11; Claude prices match
https://www.anthropic.com/pricing). Cross-region inference profiles (`us.` / `eu.` prefixes), batch,
provisioned throughput, larger image sizes and premium quality cost differently; SageMaker endpoints
bill instance hours, so `sagemaker:` SDXL uses the Bedrock per-image SDXL price as a rough stand-in.
Offline models cost nothing; an unknown model is priced at 0 (and the line says so with `priced=False`).
Update the tables when AWS changes prices.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_CHECKED = "2025-11"

# USD per generated image, matched by substring of the model id (first match wins: specific first)
IMAGE_PRICES_USD: tuple[tuple[str, float], ...] = (
    ("sd3-5-large", 0.08),  # Stability SD3.5 Large
    ("stable-image-ultra", 0.14),  # Stability Stable Image Ultra
    ("stable-image-core", 0.04),  # Stability Stable Image Core
    ("nova-canvas", 0.04),  # Amazon Nova Canvas, standard quality up to 1024x1024
    ("stable-diffusion-xl", 0.04),  # SDXL 1.0 on Bedrock, standard quality
    ("sdxl", 0.04),  # SDXL on a SageMaker endpoint (really instance hours; see the docstring)
)

# USD per million tokens (input, output), matched by substring of the model id
TOKEN_PRICES_USD_PER_MTOK: tuple[tuple[str, tuple[float, float]], ...] = (
    ("claude-haiku-4-5", (1.00, 5.00)),
    ("claude-3-5-haiku", (0.80, 4.00)),
    ("claude-sonnet", (3.00, 15.00)),  # Sonnet 4 / 4.5 (up to 200k input tokens)
    ("claude-3-7-sonnet", (3.00, 15.00)),
    ("claude-3-5-sonnet", (3.00, 15.00)),
)


@dataclass(frozen=True)
class CostEstimate:
    """Estimated USD of one turn, split by model, and whether every model used had a known price."""

    chat_usd: float
    image_usd: float
    priced: bool

    @property
    def total_usd(self) -> float:
        """Chat plus images, rounded to a millionth of a dollar."""
        return round(self.chat_usd + self.image_usd, 6)


def _offline(model_id: str | None) -> bool:
    return not model_id or model_id == "offline" or model_id.startswith("offline")


def image_price(model_id: str | None) -> float | None:
    """USD per image of `model_id`; 0 offline; None when unknown."""
    if _offline(model_id):
        return 0.0
    name = str(model_id).lower()
    return next((price for key, price in IMAGE_PRICES_USD if key in name), None)


def token_prices(model_id: str | None) -> tuple[float, float] | None:
    """USD per million input and output tokens of `model_id`; zeros offline; None when unknown."""
    if _offline(model_id):
        return 0.0, 0.0
    name = str(model_id).lower()
    return next((prices for key, prices in TOKEN_PRICES_USD_PER_MTOK if key in name), None)


def estimate_cost(
    chat_model: str | None, input_tokens: int, output_tokens: int, image_model: str | None, images: int
) -> CostEstimate:
    """The estimated cost of one turn (unknown models count as 0 with `priced=False`)."""
    tokens = token_prices(chat_model)
    per_image = image_price(image_model)
    chat = (input_tokens * tokens[0] + output_tokens * tokens[1]) / 1_000_000 if tokens else 0.0
    image = images * per_image if per_image is not None else 0.0
    return CostEstimate(round(chat, 6), round(image, 6), tokens is not None and per_image is not None)
