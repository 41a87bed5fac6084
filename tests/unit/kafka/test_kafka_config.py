"""aiokafka keyword arguments and Faust credentials from settings; secrets stay hidden."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol, SASLMechanism

from ingestor.errors import ConfigError
from ingestor.kafka.config import client_kwargs, faust_credentials
from ingestor.settings import Settings

SECRET = "hunter2-very-secret"
REMOTE = "kafka.example.com:9093"


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


def sasl(protocol: str = "SASL_SSL", mechanism: str | None = "SCRAM-SHA-512") -> Settings:
    return settings(
        kafka_bootstrap=REMOTE,
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="svc-ingestor",
        kafka_sasl_password=SECRET,
    )


def test_local_broker_is_plaintext_whatever_is_configured() -> None:
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password=SECRET)

    assert client_kwargs(s, "127.0.0.1:9092") == {"bootstrap_servers": "127.0.0.1:9092"}
    assert faust_credentials(s) is None


def test_plaintext_remote() -> None:
    s = settings(kafka_bootstrap=REMOTE)

    assert client_kwargs(s, REMOTE) == {
        "bootstrap_servers": REMOTE,
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(s) is None


def test_sasl_ssl_scram() -> None:
    kwargs = client_kwargs(sasl(), REMOTE)

    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc-ingestor"
    assert kwargs["sasl_plain_password"] == SECRET
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_defaults_to_plain_and_has_no_tls() -> None:
    kwargs = client_kwargs(sasl("SASL_PLAINTEXT", mechanism=None), REMOTE)

    assert kwargs["sasl_mechanism"] == "PLAIN"
    assert "ssl_context" not in kwargs


def test_secrets_never_in_repr() -> None:
    s = sasl()
    kwargs = client_kwargs(s, REMOTE)
    credentials = faust_credentials(s)

    for text in (repr(kwargs), str(kwargs), repr(s), str(s), repr(credentials)):
        assert SECRET not in text
    assert "svc-ingestor" in repr(kwargs)  # the rest stays readable


def test_sasl_without_password_is_a_config_error() -> None:
    s = settings(kafka_bootstrap=REMOTE, kafka_security_protocol="SASL_SSL")

    with pytest.raises(ConfigError, match="kafka_sasl_username"):
        client_kwargs(s, REMOTE)
    with pytest.raises(ConfigError, match="kafka_sasl_username"):
        faust_credentials(s)


def test_cafile_must_exist(tmp_path: Path) -> None:
    s = settings(
        kafka_bootstrap=REMOTE,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tmp_path / "missing.pem",
    )

    with pytest.raises(ConfigError, match="missing.pem"):
        client_kwargs(s, REMOTE)


def test_cafile_is_loaded(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    cafile.write_text(_SELF_SIGNED_CA)
    s = settings(kafka_bootstrap=REMOTE, kafka_security_protocol="SSL", kafka_ssl_cafile=cafile)

    context = client_kwargs(s, REMOTE)["ssl_context"]

    assert [c["serialNumber"] for c in context.get_ca_certs()] == [_CA_SERIAL]


def test_faust_credentials_match() -> None:
    ssl_only = faust_credentials(settings(kafka_bootstrap=REMOTE, kafka_security_protocol="SSL"))
    assert isinstance(ssl_only, SSLCredentials)
    assert ssl_only.protocol is AuthProtocol.SSL

    scram = faust_credentials(sasl())
    assert isinstance(scram, SASLCredentials)
    assert scram.protocol is AuthProtocol.SASL_SSL
    assert scram.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (scram.username, scram.password) == ("svc-ingestor", SECRET)

    plain = faust_credentials(sasl("SASL_PLAINTEXT", "PLAIN"))
    assert isinstance(plain, SASLCredentials)
    assert plain.protocol is AuthProtocol.SASL_PLAINTEXT
    assert plain.ssl_context is None


_CA_SERIAL = "1D6E57"
# A throwaway self-signed CA (no key kept anywhere): only its loading is tested.
_SELF_SIGNED_CA = """\
-----BEGIN CERTIFICATE-----
MIIBfDCCASKgAwIBAgIDHW5XMAoGCCqGSM49BAMCMBsxGTAXBgNVBAMMEGluZ2Vz
dG9yLXRlc3QtY2EwIBcNMjYxMTIyMDYwNDA4WhgPMjEyNjEwMjkwNjA0MDhaMBsx
GTAXBgNVBAMMEGluZ2VzdG9yLXRlc3QtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAAQM6jfv0fczrqxfS4KytAXaxxJzmO0tM+rQRFhXIs12bA/ML2wznBuIEfzt
Bh1drhnsDZqSSPiyZbGcNjkeMzMIo1MwUTAdBgNVHQ4EFgQUOrEt1L7cTCnC36G0
yoHNIYopyHUwHwYDVR0jBBgwFoAUOrEt1L7cTCnC36G0yoHNIYopyHUwDwYDVR0T
AQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAx8a+1zJOgPsKis3vbXl6yx+g
yoVwc0zHZu6n6lAoPJ0CIDdIkJ5PNZrYaNd2NoyaBDz2NyYMdulGc1P3OG/GPRXe
-----END CERTIFICATE-----
"""
