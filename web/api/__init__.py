"""The vspd API v3: one module per endpoint, the wire types, the shared checks, OpenAPI."""
