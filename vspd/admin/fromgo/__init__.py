"""The switch from EXCCoin/vspd: its bbolt database read and imported."""
