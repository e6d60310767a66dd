"""Finding credentials in text a person posted: Purser's and OpenRouter's keys, and other vendors'.

The text is read once, here, and never kept: a key of Purser's format leaves as the
sha256 of its secret (what the store keys by), another vendor's credential as the name
of its vendor. Other vendors' formats come from Yelp's detect-secrets plugins, which are
maintained as those formats change; they are not Purser's to revoke, only to warn about.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

#: Purser's local keys (store.secrets.mint_local_secret) and OpenRouter's, as they are handed out
OWN = re.compile(r"(?<![A-Za-z0-9_-])(sk-purser-[A-Za-z0-9_-]{43}|sk-or-v1-[0-9a-f]{64})(?![A-Za-z0-9_-])")
#: most text is no credential at all: one cheap look before the vendors' patterns
HINT = re.compile(r"sk-|AKIA|ASIA|gh[pousr]_|glpat-|xox[abposr]-|SG\.|npm_|pypi-|-----BEGIN|AccountKey=|rk_live|sk_live|SK[0-9a-f]{32}|[MN][A-Za-z\d]{23}\.")


class AnthropicDetector(RegexBasedDetector):
    """Anthropic's API keys, which detect-secrets 1.5 does not know yet (its plugin interface, not a list of our own)."""

    secret_type = "Anthropic API Key"
    denylist = [re.compile(r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}")]


VENDORS = [
    AnthropicDetector(),
    AWSKeyDetector(),
    AzureStorageKeyDetector(),
    DiscordBotTokenDetector(),
    GitHubTokenDetector(),
    GitLabTokenDetector(),
    NpmDetector(),
    OpenAIDetector(),
    PrivateKeyDetector(),
    PypiTokenDetector(),
    SendGridDetector(),
    SlackDetector(),
    StripeDetector(),
    TwilioKeyDetector(),
]


@dataclass(frozen=True)
class Findings:
    secret_hashes: tuple[str, ...] = ()  # sha256 hex of each candidate in Purser's or OpenRouter's key format
    vendors: tuple[str, ...] = field(default_factory=tuple)  # other vendors' credentials, by vendor

    def __bool__(self) -> bool:
        return bool(self.secret_hashes or self.vendors)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def scan(text: str) -> Findings:
    """What ``text`` holds that looks like a credential; the text itself goes nowhere."""
    if not text or not HINT.search(text):
        return Findings()
    own = tuple(dict.fromkeys(hash_secret(m.group(1)) for m in OWN.finditer(text)))
    rest = OWN.sub(" ", text)  # a Purser or OpenRouter key is not also "an OpenAI-like token"
    vendors: dict[str, None] = {}
    for line in rest.splitlines():
        if not HINT.search(line):
            continue
        for detector in VENDORS:
            if detector.analyze_line(filename="slack", line=line):
                vendors[detector.secret_type] = None
    return Findings(own, tuple(vendors))
