"""The brand API (``/api/v1``), its OAuth2 token endpoint and its OpenAPI document."""
