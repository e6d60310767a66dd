"""Key secrets: hashed for lookup, encrypted for the one reveal, never kept in clear."""

from __future__ import annotations

import hashlib
import secrets as _random
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from store.errors import InvalidInput

LOCAL_PREFIX = "sk-purser-"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """Enough to recognise a key in a list, far too little to use it."""
    return secret[: len(LOCAL_PREFIX) + 6] if secret.startswith(LOCAL_PREFIX) else secret[:14]


def mint_local_secret() -> str:
    return LOCAL_PREFIX + _random.token_urlsafe(32)


class Cipher:
    """Fernet with rotation: the first key encrypts, every listed key decrypts.

    ``PURSER_SECRET_KEY`` holds one or more Fernet keys separated by commas, newest
    first, so a key can be rotated while reveals written under the old one still open.
    """

    def __init__(self, keys: str | list[str]) -> None:
        if isinstance(keys, str):
            keys = [k.strip() for k in keys.split(",") if k.strip()]
        if not keys:
            raise InvalidInput("PURSER_SECRET_KEY is empty. Generate one with `purser secret-key` and set it.")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise InvalidInput("PURSER_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes). Generate one with `purser secret-key`.") from None

    @staticmethod
    def generate() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise InvalidInput(UNKNOWN_KEY) from None

    def rotate(self, token: bytes) -> bytes:
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise InvalidInput(UNKNOWN_KEY) from None


UNKNOWN_KEY = (
    "This secret was encrypted with a key that is no longer in PURSER_SECRET_KEY, so it cannot be opened. Nothing was wiped: "
    "the operator should list the old key after the new one (`PURSER_SECRET_KEY=new,old`) and run `purser reveals reencrypt`; "
    "the reveal then works."
)


_cipher: Cipher | None = None
_key_source: Callable[[], str] | None = None


def cipher() -> Cipher:
    """The process's cipher, from the key source the process was given (``use_key_source``)."""
    global _cipher
    if _cipher is None:
        if _key_source is None:
            raise InvalidInput("No secret key was given to this process, so key secrets cannot be opened. Start it through `purser`.")
        _cipher = Cipher(_key_source())
    return _cipher


def use_cipher(c: Cipher | None) -> None:
    global _cipher
    _cipher = c


def use_key_source(source: Callable[[], str] | None) -> None:
    """Where the cipher's key comes from when first needed (the settings, in ``purser.wiring``); a cipher in use stays."""
    global _key_source
    _key_source = source
