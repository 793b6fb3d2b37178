"""Secrets at rest: Fernet with rotation (crm.encryption)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from pytest_django import Settings

from crm import encryption


def test_encrypted_text_round_trips_and_is_not_stored_in_clear(settings: Settings) -> None:
    settings.CRM_ENCRYPTION_KEY = Fernet.generate_key().decode()

    token = encryption.encrypt("hunter2 ünïcode")

    assert "hunter2" not in token
    assert encryption.decrypt(token) == "hunter2 ünïcode"


def test_without_a_configured_key_one_is_derived_from_secret_key(settings: Settings) -> None:
    settings.CRM_ENCRYPTION_KEY = ""
    settings.SECRET_KEY = "a-secret-key-for-this-test"
    token = encryption.encrypt("password")

    # The same derivation, given as an explicit key, reads it: the derivation is stable.
    settings.CRM_ENCRYPTION_KEY = encryption.derived_key("a-secret-key-for-this-test")
    assert encryption.decrypt(token) == "password"

    settings.CRM_ENCRYPTION_KEY = ""
    settings.SECRET_KEY = "another-secret-key"
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(token)


def test_a_new_first_key_encrypts_while_the_old_one_still_decrypts(settings: Settings) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CRM_ENCRYPTION_KEY = old
    stored = encryption.encrypt("oauth-refresh-token")

    settings.CRM_ENCRYPTION_KEY = f"{new}, {old}"
    assert encryption.decrypt(stored) == "oauth-refresh-token"
    rotated = encryption.reencrypt(stored)
    fresh = encryption.encrypt("another")

    # Once everything is re-encrypted, the old key can go.
    settings.CRM_ENCRYPTION_KEY = new
    assert encryption.decrypt(rotated) == "oauth-refresh-token"
    assert encryption.decrypt(fresh) == "another"
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(stored)


def test_a_tampered_value_does_not_decrypt(settings: Settings) -> None:
    settings.CRM_ENCRYPTION_KEY = Fernet.generate_key().decode()
    token = encryption.encrypt("secret")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]

    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(tampered)
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt("not a token at all ✗")


def test_a_malformed_key_is_a_configuration_error_that_does_not_show_the_key(
    settings: Settings,
) -> None:
    good = Fernet.generate_key().decode()
    settings.CRM_ENCRYPTION_KEY = f"{good},not-a-fernet-key-but-secret"

    with pytest.raises(ImproperlyConfigured) as raised:
        encryption.encrypt("x")

    assert "key 2" in str(raised.value)
    assert "not-a-fernet-key-but-secret" not in str(raised.value)
    assert good not in str(raised.value)
