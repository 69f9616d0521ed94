"""Settings, read once from ``POSTWARDEN_*`` variables; the only module that reads the environment."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything configurable. Built once at the edge and passed down; never a module global."""

    model_config = SettingsConfigDict(env_prefix="POSTWARDEN_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str = ""
    secret_key: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8025"
    redis_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: SecretStr | None = None
    #: "none", "starttls" or "tls" (implicit TLS, usually port 465).
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    mail_from: str = "postwarden <no-reply@postwarden.localhost>"
    #: Run the background worker inside ``postwarden serve``; switch off when
    #: ``postwarden worker`` runs apart.
    embedded_worker: bool = True
    dns_nameservers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    dns_timeout_seconds: float = 3.0
    #: DKIM key size for new domains: 2048, or 1024 for DNS hosts that cannot hold longer records.
    dkim_key_bits: Literal[1024, 2048] = 2048
    #: What customers' SPF records include, and where their Return-Path CNAME points:
    #: the sending infrastructure of this installation.
    spf_include: str = "spf.postwarden.localhost"
    return_path_target: str = "pm.postwarden.localhost"
    #: Let hooks and webhooks call private, loopback and link-local addresses (a receiver on
    #: the same host or network); checked again at each connection, against what DNS answers.
    allow_private_urls: bool = False
    #: Seconds between the attempts of a webhook delivery; one retry per entry. Postmark's
    #: schedule: 1, 5, 10, 10, 10, 15 and 30 minutes, then 1, 2 and 6 hours (10.5 hours in all).
    webhook_retry_delays_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [60.0, 300.0, 600.0, 600.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0]
    )
    #: How long one attempt may take, from connecting to the end of the answer.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: Deliveries each worker posts at once (its connections); more is slower with the HTTP
    #: client used, beyond about eight.
    webhook_concurrency: int = Field(default=8, ge=1, le=256)
    #: Proxy addresses (or networks) whose X-Forwarded-For is believed; "*" trusts any.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    rate_limit_per_token: str = "50/second"
    rate_limit_per_ip: str = "100/second"

    #: How long a worker may serve a cached token or server after another worker changed it,
    #: when no Redis carries invalidations between workers.
    cache_ttl_seconds: float = 2.0
    access_log: bool = True
    #: How long a sign-in session lasts before its user signs in again.
    session_lifetime_hours: int = Field(default=12, ge=1, le=24 * 30)
    #: Audit events older than this many days are pruned (hourly by the worker, or by
    #: ``postwarden audit prune``); unset keeps them forever.
    audit_retention_days: int | None = Field(default=None, ge=1)
    #: How long an invitation link stays valid.
    invitation_lifetime_days: int = Field(default=7, ge=1, le=90)
    #: Domain of each server's ``InboundAddress`` (``<hash>@<domain>``).
    inbound_address_domain: str = "inbound.postwarden.localhost"
    log_level: str = "INFO"

    _validate_lists = field_validator(
        "dns_nameservers", "trusted_proxies", "webhook_retry_delays_seconds", mode="before"
    )(_split_csv)

    @field_validator("webhook_retry_delays_seconds")
    @classmethod
    def _check_delays(cls, delays: list[float]) -> list[float]:
        if any(delay < 0 for delay in delays):
            raise ValueError("retry delays are seconds, 0 or more")
        return delays

    @field_validator("rate_limit_per_token", "rate_limit_per_ip")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from postwarden.ratelimit import parse_rate

        parse_rate(value)
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'postwarden.db').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> bytes:
        """The configured key, or one generated into ``data_dir`` on first start and kept there."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value().encode()
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(48))
        return key_file.read_text().strip().encode()


def load_settings() -> Settings:
    return Settings()
