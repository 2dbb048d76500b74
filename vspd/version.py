"""The application version: semver, and >= 1.1.0 so EXCC wallets accept us."""

__version__ = "1.3.0"
