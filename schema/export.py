"""Write the JSON Schema of the canonical event union (for adapter authors in other
languages): ``python -m schema.export`` rewrites ``schema/canonical-events.schema.json``."""

from __future__ import annotations

import json
from pathlib import Path

from schema.events import EVENT_ADAPTER

SCHEMA_FILE = Path(__file__).with_name("canonical-events.schema.json")


def render() -> str:
    document = EVENT_ADAPTER.json_schema(mode="serialization")
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "CanonicalEvent"
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
