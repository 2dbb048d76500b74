"""The voter's own work: its gRPC service, the carrier of handed-over tickets, the pending store."""
