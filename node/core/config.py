"""The node's configuration file (``node.toml``), loaded into a pydantic model.

Every setting is documented in ``node.example.toml``. Unknown keys and bad values are refused with
an error that names the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from node.core.forwarded import Network, ProxyHeader, parse_trusted_proxies
from schemas.errors import describe_validation_error


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message names the key."""


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MatrixUserId = Annotated[str, Field(pattern=r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")]


class NodeSection(_Section):
    data_dir: Path = Path("minga-data")
    log_level: LogLevel = LogLevel.info
    passphrase_file: Path | None = None


class HomeserverSection(_Section):
    url: AnyHttpUrl
    user_id: MatrixUserId


class HttpSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _must_be_ip_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1") from None
        return value

    # Behind a reverse proxy (decision 0028): forwarded headers are believed only from these.
    trusted_proxies: tuple[str, ...] = ()
    proxy_header: ProxyHeader = ProxyHeader.x_forwarded_for

    @field_validator("trusted_proxies")
    @classmethod
    def _must_be_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_trusted_proxies(value)
        return value

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_trusted_proxies(self.trusted_proxies)


class MetricsSection(_Section):
    """Prometheus metrics on their own address (decision 0028); empty ``listen`` is off."""

    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _must_be_host_and_port(cls, value: str) -> str:
        value = value.strip()
        if value:
            parse_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        return parse_listen(self.listen) if self.listen else None


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:9464`` or ``[::1]:9464`` as (host, port)."""
    host, colon, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = 0
    if not colon or not 1 <= number <= 65535:
        raise ValueError("must be an IP address and port such as 127.0.0.1:9464 or [::1]:9464")
    return host, number


class EvidenceSection(_Section):
    """Files attached to cases (the ``evidence`` feature)."""

    max_file_mb: int = Field(default=500, ge=1, le=1024 * 1024)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 1024 * 1024


POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


class StoreSection(_Section):
    """Where the node's database is: empty ``url`` is the SQLite file in the data directory."""

    url: str = ""
    password_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _must_be_postgresql(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        if not value.startswith(POSTGRESQL_SCHEMES):
            raise ValueError("must be empty (the SQLite file in data_dir) or a postgresql:// URL"
                             " such as postgresql://minga@db.example.org:5432/minga")
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError("is not a valid postgresql:// URL") from None
        if url.password is not None:
            raise ValueError("must not hold the password: put it in password_file or in the"
                             " MINGA_STORE_PASSWORD environment variable")
        if not url.database:
            raise ValueError("must name the database, as in postgresql://minga@host/minga")
        return value

    @property
    def is_postgresql(self) -> bool:
        return bool(self.url)


class NodeConfig(_Section):
    node: NodeSection = NodeSection()
    homeserver: HomeserverSection
    http: HttpSection = HttpSection()
    evidence: EvidenceSection = EvidenceSection()
    store: StoreSection = StoreSection()
    metrics: MetricsSection = MetricsSection()

    def resolve(self, base: Path) -> NodeConfig:
        """Relative paths are relative to the directory of the config file."""
        node = self.node.model_copy(
            update={
                "data_dir": base / self.node.data_dir,
                "passphrase_file": base / self.node.passphrase_file
                if self.node.passphrase_file
                else None,
            }
        )
        store = self.store.model_copy(update={
            "password_file": base / self.store.password_file if self.store.password_file
            else None})
        return self.model_copy(update={"node": node, "store": store})


def parse_config(text: str, *, source: str = "node.toml") -> NodeConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML ({error})") from None
    try:
        return NodeConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_validation_error(error)}") from None


def load_config(path: Path) -> NodeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    return parse_config(text, source=str(path)).resolve(path.parent.resolve())
