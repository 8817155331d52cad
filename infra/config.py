"""Deployment settings: read from CDK context, turned into the functions' environment.

Every name in ``chalicelib.core.settings.REQUIRED`` must reach every function; the
cursor-signing secret's ARN is only known once the stack creates the secret, so it
is added by the stack (see :data:`LATE_SETTINGS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Settings whose value is a CloudFormation reference, set by the stack itself.
LATE_SETTINGS = ("AMPORA_CURSOR_SECRET_ARN",)

#: The OIDC authority used when none is given: it does not resolve, so a stack
#: deployed without ``-c oidcAuthority=...`` fails closed (503), never open.
UNSET_AUTHORITY = "https://oidc-authority-not-configured.invalid"

#: Context keys and their defaults (``cdk synth -c key=value`` or ``python app.py -c key=value``).
DEFAULTS: dict[str, str] = {
    "stage": "dev",
    "region": "us-east-1",
    "oidcAuthority": UNSET_AUTHORITY,
    "oidcAudience": "ampora",
    "oidcRoleClaim": "role",
    "oidcTenantClaim": "tenant",
    "docsUrl": "https://docs.ampora.io",
    "auditRetentionDays": "400",
    "logLevel": "INFO",
    "tracing": "false",
    "singleFunction": "false",
    "agentDomainName": "",
    "agentCertificateArn": "",
    "agentTruststoreVersion": "",
}


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class StageSettings:
    """Everything that differs between two deployments of Ampora."""

    stage: str
    region: str
    oidc_authority: str
    oidc_audience: str
    oidc_role_claim: str
    oidc_tenant_claim: str
    docs_url: str
    audit_retention_days: int
    log_level: str
    tracing: bool
    single_function: bool
    #: The agents' mutual-TLS custom domain and its ACM certificate (both, or no domain).
    agent_domain_name: str = ""
    agent_certificate_arn: str = ""
    #: The S3 object version of the truststore the domain uses (empty: the latest).
    agent_truststore_version: str = ""

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> StageSettings:
        """Settings from CDK context values, each falling back to :data:`DEFAULTS`."""
        def get(key: str) -> str:
            value = context.get(key)
            return DEFAULTS[key] if value is None or value == "" else str(value)

        return cls(
            stage=get("stage"), region=get("region"),
            oidc_authority=get("oidcAuthority").rstrip("/"), oidc_audience=get("oidcAudience"),
            oidc_role_claim=get("oidcRoleClaim"), oidc_tenant_claim=get("oidcTenantClaim"),
            docs_url=get("docsUrl").rstrip("/"),
            audit_retention_days=int(get("auditRetentionDays")),
            log_level=get("logLevel").upper(), tracing=_flag(get("tracing")),
            single_function=_flag(get("singleFunction")),
            agent_domain_name=get("agentDomainName"),
            agent_certificate_arn=get("agentCertificateArn"),
            agent_truststore_version=get("agentTruststoreVersion"),
        )

    @property
    def agent_domain(self) -> bool:
        """Whether the agents' mutual-TLS custom domain is configured (name and certificate)."""
        return bool(self.agent_domain_name and self.agent_certificate_arn)

    @property
    def ca_secret_prefix(self) -> str:
        """The name prefix of the tenants' CA secrets (``chalicelib.certificates``)."""
        return f"ampora/{self.stage}/ca/"

    @property
    def resource_prefix(self) -> str:
        """The prefix of every named resource of this stage (tables, functions)."""
        return f"ampora-{self.stage}-"

    @property
    def stack_name(self) -> str:
        """The CloudFormation stack name."""
        return f"ampora-{self.stage}"

    def environment(self) -> dict[str, str]:
        """The functions' environment variables known at synth time."""
        return {
            "AMPORA_STAGE": self.stage,
            "AMPORA_TABLE_PREFIX": self.resource_prefix,
            "AMPORA_OIDC_AUTHORITY": self.oidc_authority,
            "AMPORA_OIDC_AUDIENCE": self.oidc_audience,
            "AMPORA_OIDC_ROLE_CLAIM": self.oidc_role_claim,
            "AMPORA_OIDC_TENANT_CLAIM": self.oidc_tenant_claim,
            "AMPORA_DOCS_URL": self.docs_url,
            "AMPORA_AUDIT_RETENTION_DAYS": str(self.audit_retention_days),
            "AMPORA_LOG_LEVEL": self.log_level,
            "AMPORA_TRACING": "true" if self.tracing else "false",
            "POWERTOOLS_SERVICE_NAME": "ampora",
            "POWERTOOLS_METRICS_NAMESPACE": "Ampora",
        }
