"""The OpenAPI 3.1 document of the admin API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from gateway import __version__


def _op(
    summary: str,
    *,
    body: dict[str, Any] | None = None,
    params: tuple[str, ...] = (),
    answer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    done: dict[str, Any] = {} if answer is None else {"schema": answer}
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "done", "content": {"application/json": done}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
        },
    }
    if params:
        operation["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def _obj(**props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [k for k in props if k != "display_name"],
        "properties": props,
    }


_STR = {"type": "string"}
_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601, UTC, to the second: 2026-12-04T17:15:00Z",
}
_STATUS = {
    "type": "object",
    "properties": {
        "time": _TIME,
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "node": _STR,
                    "alive": {"type": "boolean"},
                    "sessions": {"type": "integer"},
                    "host": _STR,
                    "pid": _STR,
                    "started": _TIME,
                },
            },
        },
        "accounts": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
_AUDIT = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "id": _STR,
            "time": _TIME,
            "actor": _STR,
            "action": _STR,
            "detail": {"type": "object", "additionalProperties": _STR},
        },
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "IM gateway admin API", "version": __version__},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            "Error": {
                "description": "error",
                "content": {
                    "application/json": {
                        "schema": _obj(error=_STR),
                    }
                },
            }
        },
    },
    "paths": {
        "/v1/status": {
            "get": _op("Nodes, their liveness and session counts; account counts", answer=_STATUS)
        },
        "/v1/accounts": {
            "post": _op(
                "Create a hosted account",
                body=_obj(network=_STR, handle=_STR, password=_STR, display_name=_STR),
            )
        },
        "/v1/accounts/{network}": {
            "get": _op("List the accounts of a network", params=("network",))
        },
        "/v1/account/{address}": {"delete": _op("Delete an account", params=("address",))},
        "/v1/account/{address}/disable": {"post": _op("Disable an account", params=("address",))},
        "/v1/account/{address}/enable": {"post": _op("Enable an account", params=("address",))},
        "/v1/account/{address}/password": {
            "put": _op("Set an account's password", params=("address",), body=_obj(password=_STR))
        },
        "/v1/links": {
            "post": _op(
                "Link addresses of one person",
                body=_obj(addresses={"type": "array", "items": _STR, "minItems": 2}),
            )
        },
        "/v1/links/{address}": {"delete": _op("Unlink an address", params=("address",))},
        "/v1/whois/{address}": {
            "get": _op("Person, aliases in every network, where online", params=("address",))
        },
        "/v1/sessions": {"get": _op("Every session in the directory")},
        "/v1/audit": {"get": _op("The most recent admin changes", answer=_AUDIT)},
    },
}
