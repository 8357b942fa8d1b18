"""Multi-workspace installs: Bolt's OAuth flow with SQLAlchemy installation and state stores on our engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import sessionmaker

from bot.slack.credentials import SlackCredentials
from bot.slack.ids import BOT_SCOPES

if TYPE_CHECKING:
    from bot.slack.services import Services

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
INSTALLATIONS_TABLE = "slack_installations"  # created by storage/migrations/versions/0002_slack_oauth.py
BOTS_TABLE = "slack_bots"
STATES_TABLE = "slack_oauth_states"
STATE_EXPIRATION_S = 600


def oauth_metadata() -> MetaData:
    """The stores' own tables, as slack_sdk builds them (the migration must match these)."""
    metadata = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(metadata, INSTALLATIONS_TABLE)
    SQLAlchemyInstallationStore.build_bots_table(metadata, BOTS_TABLE)
    SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, STATES_TABLE)
    return metadata


def engine_of(services: Services) -> Engine:
    """The process's one engine: the bind of the SQL thread store's sessions."""
    sessions = getattr(services.threads, "sessions", None)
    bind = sessions.kw.get("bind") if isinstance(sessions, sessionmaker) else None
    if not isinstance(bind, Engine):
        raise TypeError("OAuth installs need the SQL thread store, whose engine also holds the installations")
    return bind


def build_oauth_settings(
    credentials: SlackCredentials, engine: Engine, logger: logging.Logger
) -> OAuthSettings:
    """OAuthSettings for SLACK_CLIENT_ID/SECRET: installs at /slack/install, tokens kept via `engine`."""
    if credentials.client_id is None or credentials.client_secret is None:
        raise ValueError("OAuth needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
    installations = SQLAlchemyInstallationStore(
        credentials.client_id,
        engine,
        bots_table_name=BOTS_TABLE,
        installations_table_name=INSTALLATIONS_TABLE,
        logger=logger,
    )
    states = SQLAlchemyOAuthStateStore(STATE_EXPIRATION_S, engine, logger=logger, table_name=STATES_TABLE)
    return OAuthSettings(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=credentials.redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=credentials.authorization_url,
        installation_store=installations,
        installation_store_bot_only=True,
        state_store=states,
        state_expiration_seconds=STATE_EXPIRATION_S,
        logger=logger,
    )
