"""Kafka client settings from ``Settings``: keyword arguments for aiokafka and Faust credentials.

The embedded Tansu broker speaks PLAINTEXT only, so security settings apply to a configured
``kafka_bootstrap`` alone. Incomplete SASL settings are a ``ConfigError`` here rather than an
obscure handshake failure later.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from ingestor.errors import ConfigError
from ingestor.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["ClientKwargs", "client_kwargs", "faust_credentials", "ssl_context"]

_SECRET_KEYS = frozenset({"sasl_plain_password"})


class ClientKwargs(dict[str, Any]):
    """A plain dict for ``AIOKafkaProducer(**kwargs)`` whose repr hides the password."""

    def __repr__(self) -> str:
        shown = {k: ("**********" if k in _SECRET_KEYS else v) for k, v in self.items()}
        return f"ClientKwargs({shown!r})"

    __str__ = __repr__


def client_kwargs(settings: Settings, bootstrap: str) -> ClientKwargs:
    """Connection keyword arguments for any aiokafka client (producer, consumer, admin).

    Raises ``ConfigError`` when SASL is selected without a username and password.
    """
    kwargs = ClientKwargs(bootstrap_servers=bootstrap)
    if settings.uses_local_broker:
        return kwargs
    protocol = settings.kafka_security_protocol
    kwargs["security_protocol"] = protocol
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        username, password = _sasl_user(settings)
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        kwargs["sasl_plain_username"] = username
        kwargs["sasl_plain_password"] = password
    return kwargs


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The same connection as Faust's ``broker_credentials`` (None: PLAINTEXT)."""
    # Faust loads here, not with client_kwargs: the watcher and `up`'s preparation never need it.
    from faust.auth import SASLCredentials, SSLCredentials

    if settings.uses_local_broker or settings.kafka_security_protocol == "PLAINTEXT":
        return None
    if settings.kafka_security_protocol == "SSL":
        return SSLCredentials(ssl_context(settings))
    username, password = _sasl_user(settings)
    return SASLCredentials(
        username=username,
        password=password,
        # Faust derives SASL_SSL from the presence of a context.
        ssl_context=ssl_context(settings)
        if settings.kafka_security_protocol == "SASL_SSL"
        else None,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
    )


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A verifying client context: the system CAs, or only ``kafka_ssl_cafile`` when set."""
    cafile = settings.kafka_ssl_cafile
    if cafile is not None and not cafile.is_file():
        raise ConfigError(f"kafka_ssl_cafile {cafile} does not exist")
    return ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=None if cafile is None else str(cafile)
    )


def _sasl_user(settings: Settings) -> tuple[str, str]:
    password = settings.kafka_sasl_password
    if not settings.kafka_sasl_username or password is None:
        raise ConfigError(
            f"kafka_security_protocol {settings.kafka_security_protocol} needs "
            "kafka_sasl_username and kafka_sasl_password"
        )
    return settings.kafka_sasl_username, password.get_secret_value()
