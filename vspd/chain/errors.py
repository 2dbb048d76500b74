"""The one error type every decoder in vspd.chain raises."""


class ChainError(ValueError):
    """Bad or unexpected chain data (address, key, transaction, ...).

    Decoders raise only this type on malformed input, so callers can turn
    any of them into a client error without catching broad exceptions.
    """
