"""boto3 clients for AWS adapters (shared by the embedder, chat and image adapters)."""

from __future__ import annotations

from typing import Any


def aws_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None,
    max_attempts: int,
    connect_timeout_s: float,
    read_timeout_s: float,
) -> Any:
    """A client with adaptive retries counted as total attempts, bounded timeouts and its own session.

    botocore's retries["max_attempts"] counts retries only (4 -> 5 requests); total_max_attempts counts
    the first request too, which is what `max_attempts` means here. An own session, because boto3's
    default session caches credentials for the whole process. Raises ImportError when boto3 is missing;
    botocore errors are the caller's to translate.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "adaptive"},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        user_agent_extra="imagine-bot",
    )
    session = boto3.session.Session(region_name=region)
    return session.client(service, endpoint_url=endpoint_url, config=config)
