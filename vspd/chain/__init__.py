"""EXCC chain primitives: pure functions and data, no I/O.

Nothing in this package imports from web/, rpcclient/ or the rest of vspd/:
it is the part of the VSP that must agree bit for bit with exccd and
exccwallet, so it is kept small, deterministic and tested against vectors.
"""
