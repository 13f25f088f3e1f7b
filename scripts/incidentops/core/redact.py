"""Remove secrets from any text before it is written to git, a comment, a log or a job summary."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MASK = "[redacted]"
# Environment variables whose values are secrets wherever they appear.
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|CREDENTIAL)", re.IGNORECASE)
_SECRET_PREFIX = ("SMOKE_",)
# Well-known token shapes, redacted even when we were not told the value.
_PATTERNS = (
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    # AWS access key ids (long-term AKIA, temporary ASIA): prefix + 16 upper-case letters or digits.
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API keys
    re.compile(r"\b[rs]k_live_[0-9A-Za-z]{16,}\b"),  # Stripe live keys
    re.compile(r"\bglpat-[0-9A-Za-z_-]{20,}\b"),  # GitLab personal access tokens
    # The workflows' git credential: base64 of "x-access-token:<token>" (the prefix encodes the fixed part).
    re.compile(r"eC1hY2Nlc3MtdG9rZW46[A-Za-z0-9+/=]+"),
    re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(?i)(authorization\s*[:=]\s*)\S+(\s+\S+)?"),
)
# PEM private keys, matched BEGIN to END in one pass (a lazy `[\s\S]*?` rescans to the end after each unclosed
# BEGIN: seconds on a 64k comment of BEGIN lines).
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z ]{0,40}PRIVATE KEY-----")
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


@dataclass(frozen=True)
class Redactor:
    secrets: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, env: Mapping[str, str], extra: Iterable[str] = ()) -> Redactor:
        """Collect secret values from variables named like secrets (and SMOKE_* credentials)."""
        values = [
            value
            for name, value in env.items()
            if value and (_SECRET_NAME.search(name) or name.startswith(_SECRET_PREFIX))
        ]
        values.extend(extra)
        unique = sorted({v for v in values if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True)
        return cls(tuple(unique))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _mask_private_keys(text)
        for pattern in _PATTERNS:
            if pattern.pattern.startswith("(?i)(authorization"):
                text = pattern.sub(lambda m: m.group(1) + MASK, text)
            else:
                text = pattern.sub(MASK, text)
        return text


def _mask_private_keys(text: str) -> str:
    out, pos = [], 0
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        end = _PEM_END.search(text, begin.end())
        out += [text[pos : begin.start()], MASK]
        if end is None:  # a truncated key is still key material: mask to the end
            return "".join(out)
        pos = end.end()
    out.append(text[pos:])
    return "".join(out)
