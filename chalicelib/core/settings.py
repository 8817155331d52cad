"""Typed settings, read once from the environment: the only reader of ``os.environ``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

#: Settings a deployment must set; infra asserts each one reaches every function.
REQUIRED = (
    "AMPORA_STAGE",
    "AMPORA_TABLE_PREFIX",
    "AMPORA_OIDC_AUTHORITY",
    "AMPORA_OIDC_AUDIENCE",
    "AMPORA_DOCS_URL",
    "AMPORA_CURSOR_SECRET_ARN",
)


#: The largest configuration content a deployment may allow (360 KiB). A version's content is
#: one DynamoDB item, and an item holds at most 400 KB with its key and attribute names; the
#: rest stays well clear of that limit.
CONFIGURATION_BYTES_CAP = 368_640


class SettingsError(ValueError):
    """A setting is present but not usable (wrong type or out of range)."""


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name} must be within {low}..{high}, got {value}")
    return value


def _bool(env: dict[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one deployment (or the local stack)."""

    stage: str = "dev"
    region: str = "us-east-1"
    table_prefix: str = "ampora-dev-"
    docs_url: str = "https://docs.ampora.io"
    oidc_authority: str = ""
    oidc_audience: str = "ampora"
    oidc_role_claim: str = "role"
    oidc_tenant_claim: str = "tenant"
    oidc_leeway_seconds: int = 30
    jwks_cooldown_seconds: int = 300
    http_timeout_seconds: int = 5
    audit_retention_days: int = 400
    event_retention_days: int = 7
    cursor_secret: str = field(default="", repr=False)
    cursor_secret_arn: str = ""
    local: bool = False
    tracing: bool = False
    log_level: str = "INFO"
    max_body_bytes: int = 1_048_576
    max_configuration_bytes: int = 262_144
    agent_cert_ttl_hours: int = 24
    bootstrap_token_max_ttl_seconds: int = 2_592_000
    truststore_bucket: str = ""
    agent_domain_name: str = ""
    #: The rollout state machine; empty: found by its name (``<table prefix>rollouts``).
    rollout_state_machine_arn: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from an environment mapping (``os.environ`` by default)."""
        env = dict(os.environ if env is None else env)
        return cls(
            stage=env.get("AMPORA_STAGE", cls.stage),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.region,
            table_prefix=env.get("AMPORA_TABLE_PREFIX", cls.table_prefix),
            docs_url=env.get("AMPORA_DOCS_URL", cls.docs_url).rstrip("/"),
            oidc_authority=env.get("AMPORA_OIDC_AUTHORITY", "").rstrip("/"),
            oidc_audience=env.get("AMPORA_OIDC_AUDIENCE", cls.oidc_audience),
            oidc_role_claim=env.get("AMPORA_OIDC_ROLE_CLAIM", cls.oidc_role_claim),
            oidc_tenant_claim=env.get("AMPORA_OIDC_TENANT_CLAIM", cls.oidc_tenant_claim),
            oidc_leeway_seconds=_int(env, "AMPORA_OIDC_LEEWAY_SECONDS", 30, 0, 60),
            jwks_cooldown_seconds=_int(env, "AMPORA_JWKS_COOLDOWN_SECONDS", 300, 1, 86_400),
            http_timeout_seconds=_int(env, "AMPORA_HTTP_TIMEOUT_SECONDS", 5, 1, 30),
            audit_retention_days=_int(env, "AMPORA_AUDIT_RETENTION_DAYS", 400, 1, 3_650),
            event_retention_days=_int(env, "AMPORA_EVENT_RETENTION_DAYS", 7, 1, 365),
            cursor_secret=env.get("AMPORA_CURSOR_SECRET", ""),
            cursor_secret_arn=env.get("AMPORA_CURSOR_SECRET_ARN", ""),
            local=_bool(env, "AMPORA_LOCAL"),
            tracing=_bool(env, "AMPORA_TRACING"),
            log_level=env.get("AMPORA_LOG_LEVEL", cls.log_level).upper(),
            max_body_bytes=_int(env, "AMPORA_MAX_BODY_BYTES", 1_048_576, 1_024, 10_485_760),
            max_configuration_bytes=_int(env, "AMPORA_MAX_CONFIGURATION_BYTES", 262_144, 1_024,
                                         CONFIGURATION_BYTES_CAP),
            agent_cert_ttl_hours=_int(env, "AMPORA_AGENT_CERT_TTL_HOURS", 24, 1, 720),
            bootstrap_token_max_ttl_seconds=_int(
                env, "AMPORA_BOOTSTRAP_TOKEN_MAX_TTL_SECONDS", 2_592_000, 300, 31_536_000),
            truststore_bucket=env.get("AMPORA_TRUSTSTORE_BUCKET", ""),
            agent_domain_name=env.get("AMPORA_AGENT_DOMAIN_NAME", ""),
            rollout_state_machine_arn=env.get("AMPORA_ROLLOUT_STATE_MACHINE_ARN", ""),
        )



@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.from_env()
