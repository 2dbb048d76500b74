"""One controller per role (`vspd --role=`): each owns its role's task group, as ElectrumX's does."""
