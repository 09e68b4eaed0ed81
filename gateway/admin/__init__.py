"""The admin surface: operations (service.py), HTTP API (api.py), OpenAPI (openapi.py)."""
