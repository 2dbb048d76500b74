"""Semantic versions and the compatibility rule vspd applies to its peers."""

import re
from dataclasses import dataclass

from .errors import ChainError

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True, order=False)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> "SemVer":
        m = _SEMVER.match(text) if isinstance(text, str) else None
        if not m:
            raise ChainError(f"not a semantic version: {text!r}")
        return cls(int(m[1]), int(m[2]), int(m[3]), m[4] or "", m[5] or "")

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            s += "-" + self.prerelease
        if self.build:
            s += "+" + self.build
        return s

    def precedence_key(self) -> tuple:
        """Ordering of semver 2.0 §11: a pre-release sorts before its release."""
        if not self.prerelease:
            pre: tuple = (1,)
        else:
            parts = []
            for p in self.prerelease.split("."):
                parts.append((0, int(p), "") if p.isdigit() else (1, 0, p))
            pre = (0, tuple(parts))
        return (self.major, self.minor, self.patch, pre)


def compatible(required: SemVer, actual: SemVer) -> bool:
    """vspd's rule for RPC APIs: same major, and actual >= required within it."""
    if actual.major != required.major:
        return False
    if actual.minor != required.minor:
        return actual.minor > required.minor
    return actual.patch >= required.patch


def at_least(actual: SemVer, minimum: SemVer) -> bool:
    """Plain semver ordering (used by wallets for `vspdversion`)."""
    return actual.precedence_key() >= minimum.precedence_key()
