"""The operator's commands (`vspadmin`) and the import from EXCCoin/vspd (fromgo/)."""
