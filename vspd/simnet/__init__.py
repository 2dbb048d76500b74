"""A local ExchangeCoin simnet with this VSP on it, from the real exccd and exccwallet.

For developers (`vspd-simnet`), the end-to-end tests and the benchmarks;
never part of a production deployment.
"""
