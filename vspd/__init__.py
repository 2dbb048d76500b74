"""vspd: a Voting Service Provider for the ExchangeCoin proof-of-stake chain."""

from .version import __version__

__all__ = ["__version__"]
