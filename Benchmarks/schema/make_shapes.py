#!/usr/bin/env python3
"""Writes the two generated benchmark shapes of `nova-bench schema` (issue 15), deterministically:

  deep.schema.json / deep.json     a schema of ~364 subschemas whose order items are reached
                                   through a 12-hop `$ref` chain and closed by
                                   `unevaluatedProperties: false` over `allOf` mixins
  array.schema.json / array.json   10,000 objects (~1.2 MB) against an `items` schema with
                                   several keywords per member

Run from anywhere:  python3 Benchmarks/schema/make_shapes.py   (rewrites the four files; no
randomness, so the output is the same on every run; `--check` only verifies they are current).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HOPS = 12
FIELD_DEFS = 34
ITEMS_PER_ORDER = 8
ORDERS = 6
ARRAY_COUNT = 10_000

APPLICATORS_ONE = ("additionalProperties", "propertyNames", "items", "contains", "not", "if", "then",
                   "else", "unevaluatedItems", "unevaluatedProperties")
APPLICATORS_MAP = ("$defs", "properties", "patternProperties", "dependentSchemas")
APPLICATORS_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")


def count_nodes(schema) -> int:
    """Subschemas (objects and booleans) in a schema, the root included."""
    if not isinstance(schema, dict):
        return 1
    n = 1
    for k, v in schema.items():
        if k in APPLICATORS_ONE:
            n += count_nodes(v)
        elif k in APPLICATORS_MAP:
            n += sum(count_nodes(s) for s in v.values())
        elif k in APPLICATORS_LIST:
            n += sum(count_nodes(s) for s in v)
    return n


def deep_schema():
    defs = {}
    # Field types the line items use: each a small object with its own keywords.
    for i in range(FIELD_DEFS):
        defs[f"field{i}"] = {
            "type": "object",
            "required": ["code", "value"],
            "properties": {
                "code": {"type": "string", "pattern": f"^F{i}-[0-9]+$", "maxLength": 32},
                "value": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}]},
                "unit": {"enum": ["kg", "m", "s", "pcs"]},
                "note": {"type": "string", "maxLength": 200},
            },
            "additionalProperties": False,
        }
    # Mixins an item is built from; `unevaluatedProperties: false` on the item sees through them.
    defs["identified"] = {
        "properties": {"id": {"type": "integer", "minimum": 1}, "sku": {"type": "string", "pattern": "^SKU-[0-9]{5}$"}},
        "required": ["id", "sku"],
    }
    defs["priced"] = {
        "properties": {
            "price": {"type": "number", "exclusiveMinimum": 0},
            "currency": {"enum": ["EUR", "USD", "GBP"]},
            "discount": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["price", "currency"],
        "dependentRequired": {"discount": ["price"]},
    }
    defs["described"] = {
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 80},
            "tags": {"type": "array", "maxItems": 8, "items": {"type": "string", "pattern": "^[a-z]+$"}},
        },
    }
    defs["shipped"] = {
        "if": {"properties": {"shipping": {"const": "express"}}, "required": ["shipping"]},
        "then": {"properties": {"shipping": True, "eta_days": {"type": "integer", "maximum": 2}}, "required": ["eta_days"]},
        "else": {"properties": {"shipping": {"enum": ["standard", "pickup"]}, "eta_days": {"type": "integer", "minimum": 1}}},
    }
    defs["item"] = {
        "type": "object",
        "allOf": [{"$ref": "#/$defs/identified"}, {"$ref": "#/$defs/priced"},
                  {"$ref": "#/$defs/described"}, {"$ref": "#/$defs/shipped"}],
        "properties": {
            "fields": {"type": "array", "items": {"oneOf": [{"$ref": f"#/$defs/field{i}"} for i in range(FIELD_DEFS)]}},
        },
        "unevaluatedProperties": False,
    }
    # The chain: hop0 → hop1 → … → hop11 → item, 12 references, each hop a resource-free
    # subschema that only adds a description-free type check.
    for h in range(HOPS):
        target = f"#/$defs/hop{h + 1}" if h + 1 < HOPS else "#/$defs/item"
        defs[f"hop{h}"] = {"$ref": target, "type": "object"}
    defs["address"] = {
        "type": "object",
        "properties": {
            "street": {"type": "string"}, "city": {"type": "string"},
            "zip": {"type": "string", "pattern": "^[0-9]{5}$"}, "country": {"enum": ["DE", "FR", "NL", "US"]},
        },
        "required": ["city", "country"],
        "unevaluatedProperties": False,
    }
    defs["order"] = {
        "type": "object",
        "allOf": [{"$ref": "#/$defs/identified"}],
        "properties": {
            "customer": {"type": "string", "minLength": 1},
            "ship_to": {"$ref": "#/$defs/address"},
            "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/hop0"}},
        },
        "required": ["customer", "items"],
        "unevaluatedProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://nova-host.dev/schemas/bench/deep.json",
        "title": "nova-host benchmark: deeply referenced schema",
        "type": "object",
        "properties": {
            "batch": {"type": "string"},
            "orders": {"type": "array", "items": {"$ref": "#/$defs/order"}},
        },
        "required": ["batch", "orders"],
        "unevaluatedProperties": False,
        "$defs": defs,
    }


def deep_document():
    orders = []
    units = ["kg", "m", "s", "pcs"]
    for o in range(ORDERS):
        items = []
        for i in range(ITEMS_PER_ORDER):
            k = o * ITEMS_PER_ORDER + i
            item = {
                "id": k + 1, "sku": f"SKU-{10000 + k:05d}", "price": 1.25 + k, "currency": ["EUR", "USD", "GBP"][k % 3],
                "name": f"Part {k}", "tags": ["spare", "metal"][: 1 + k % 2],
                "fields": [
                    {"code": f"F{(k + j) % FIELD_DEFS}-{j}", "value": j if j % 2 == 0 else f"v{j}", "unit": units[j % 4]}
                    for j in range(3)
                ],
            }
            if k % 4 == 0:
                item["discount"] = 0.1
            if k % 3 == 0:
                item["shipping"], item["eta_days"] = "express", 1
            else:
                item["shipping"], item["eta_days"] = "standard", 3 + k % 5
            items.append(item)
        orders.append({
            "id": o + 1, "sku": f"SKU-{20000 + o:05d}", "customer": f"customer-{o}",
            "ship_to": {"street": f"{o} Main St", "city": "Springfield", "zip": f"{12345 + o:05d}", "country": "DE"},
            "items": items,
        })
    return {"batch": "b-2026-12-06", "orders": orders}


def array_schema():
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://nova-host.dev/schemas/bench/array.json",
        "title": "nova-host benchmark: a large array of records",
        "type": "array",
        "items": {
            "type": "object",
            "required": ["id", "sku", "name", "price", "qty", "status"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "sku": {"type": "string", "pattern": "^SKU-[0-9]{6}$"},
                "name": {"type": "string", "minLength": 1, "maxLength": 64},
                "price": {"type": "number", "minimum": 0, "maximum": 100000},
                "qty": {"type": "integer", "minimum": 0, "maximum": 1000},
                "status": {"enum": ["active", "paused", "retired"]},
                "tags": {"type": "array", "maxItems": 4, "uniqueItems": True, "items": {"type": "string", "maxLength": 16}},
            },
        },
    }


def array_document():
    statuses = ["active", "paused", "retired"]
    tag_pool = ["red", "blue", "green", "large", "small"]
    out = []
    for i in range(ARRAY_COUNT):
        out.append({
            "id": i + 1, "sku": f"SKU-{100000 + i:06d}", "name": f"Widget number {i:05d}",
            "price": round(3.5 + (i % 997) * 1.37, 2), "qty": i % 1000, "status": statuses[i % 3],
            "tags": [tag_pool[i % 5], tag_pool[(i + 2) % 5]],
        })
    return out


def main() -> int:
    outputs = {
        "deep.schema.json": json.dumps(deep_schema(), indent=1) + "\n",
        "deep.json": json.dumps(deep_document(), separators=(",", ":")) + "\n",
        "array.schema.json": json.dumps(array_schema(), indent=1) + "\n",
        "array.json": json.dumps(array_document(), separators=(",", ":")) + "\n",
    }
    check = "--check" in sys.argv[1:]
    stale = []
    for name, text in outputs.items():
        path = os.path.join(HERE, name)
        if check:
            with open(path) as f:
                if f.read() != text:
                    stale.append(name)
        else:
            with open(path, "w") as f:
                f.write(text)
    print(f"deep schema: {count_nodes(deep_schema())} subschemas, {HOPS}-hop $ref chain; "
          f"deep document {len(outputs['deep.json'])} B; array document {len(outputs['array.json'])} B "
          f"({ARRAY_COUNT} objects)")
    if stale:
        print("stale: " + ", ".join(stale) + " (rerun without --check)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
