"""The real GraphQL server the graphql driver's tests talk to: graphql-core executing a small
schema, served over HTTP (GraphQL-over-HTTP, POST JSON) by uvicorn on 127.0.0.1.

  POST /graphql      the endpoint (also GET ?query=...)
  POST /broken       always answers 500 with a text body (not GraphQL)

The schema has queries, mutations, a field that always fails (`boom`), a non-null field that
fails (`boomRequired`, so `data` becomes null), a type whose field fails for some objects
(`User.secretNote`, for partial data), a slow field and per-key counters that let tests check
whether a mutation really ran.
"""

import asyncio
import json
import urllib.parse

from asgi_serve import serve
from graphql import build_schema, graphql

SDL = """
type Query {
  hello(name: String = "world"): String!
  users: [User!]!
  user(id: ID!): User
  products: [Product!]!
  suppliers(skus: [String!]!): [Supplier!]!
  "Always fails; nullable, so the rest of the data survives."
  boom: String
  "Always fails; non-null at the root, so data becomes null."
  boomRequired: String!
  slow(ms: Int!): Int!
  "How many reorders were placed for a SKU (to check that a mutation ran or did not)."
  reorderCount(sku: String!): Int!
}

type Mutation {
  reorder(sku: String!, quantity: Int!): Reorder!
  createUser(name: String!, email: String): User!
}

type User {
  id: ID!
  name: String!
  email: String
  "Fails for users whose id is even."
  secretNote: String
}

type Product { sku: String!, name: String!, price: Float! }
type Supplier { sku: String!, supplier: String!, leadTimeDays: Int! }
type Reorder { id: ID!, sku: String!, quantity: Int! }
"""

SCHEMA = build_schema(SDL)

USERS = [
    {"id": "1", "name": "Ada", "email": "ada@example.com"},
    {"id": "2", "name": "Grace", "email": None},
    {"id": "3", "name": "Linus", "email": "linus@example.com"},
]
PRODUCTS = [
    {"sku": "A-100", "name": "Anchor bolt", "price": 0.35},
    {"sku": "B-200", "name": "Bracket", "price": 2.5},
    {"sku": "C-300", "name": "Clamp", "price": 4.75},
    {"sku": "D-400", "name": "Dowel", "price": 0.1},
]
SUPPLIERS = {"A-100": ("Acme Fasteners", 3), "B-200": ("Bolt & Co", 5), "C-300": ("Clampworks", 7), "D-400": ("Dowel Depot", 2)}
REORDERS: dict[str, int] = {}
NEXT_ID = [100]


def user_obj(u):
    def secret_note(info):
        if int(u["id"]) % 2 == 0:
            raise Exception(f"secretNote of user {u['id']} is classified")
        return f"note for {u['name']}"
    return dict(u, secretNote=secret_note)


def boom(info):
    raise Exception("boom: this field always fails")


async def slow(info, ms):
    await asyncio.sleep(ms / 1000)
    return ms


def reorder(info, sku, quantity):
    if quantity <= 0:
        raise Exception("quantity must be positive")
    REORDERS[sku] = REORDERS.get(sku, 0) + 1
    NEXT_ID[0] += 1
    return {"id": str(NEXT_ID[0]), "sku": sku, "quantity": quantity}


def create_user(info, name, email=None):
    NEXT_ID[0] += 1
    u = {"id": str(NEXT_ID[0]), "name": name, "email": email}
    USERS.append(u)
    return user_obj(u)


ROOT = {
    "hello": lambda info, name="world": f"hello, {name}",
    "users": lambda info: [user_obj(u) for u in USERS],
    "user": lambda info, id: next((user_obj(u) for u in USERS if u["id"] == id), None),
    "products": lambda info: PRODUCTS,
    "suppliers": lambda info, skus: [
        {"sku": s, "supplier": SUPPLIERS[s][0], "leadTimeDays": SUPPLIERS[s][1]} for s in skus if s in SUPPLIERS
    ],
    "boom": boom,
    "boomRequired": boom,
    "slow": slow,
    "reorderCount": lambda info, sku: REORDERS.get(sku, 0),
    "reorder": reorder,
    "createUser": create_user,
}


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body
        elif message["type"] == "http.disconnect":
            return body


async def respond(send, status, payload, content_type="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = await read_body(receive)
    if scope["path"] == "/broken":
        return await respond(send, 500, b"internal server error (not GraphQL)", "text/plain")
    if scope["path"] != "/graphql":
        return await respond(send, 404, {"errors": [{"message": "not found"}]})
    if scope["method"] == "GET":
        q = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
        request = {"query": q.get("query", [""])[0]}
    else:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return await respond(send, 400, {"errors": [{"message": "request body is not JSON"}]})
    query = request.get("query")
    if not isinstance(query, str):
        return await respond(send, 400, {"errors": [{"message": "query must be a string"}]})
    result = await graphql(SCHEMA, query, root_value=ROOT, variable_values=request.get("variables"),
                           operation_name=request.get("operationName"))
    out = {}
    if result.errors:
        out["errors"] = [e.formatted for e in result.errors]
    if result.data is not None or not result.errors or any(e.path for e in result.errors):
        out["data"] = result.data
    out["extensions"] = {"server": "nova-test-graphql"}
    await respond(send, 200, out)


def main():
    serve(app)


if __name__ == "__main__":
    main()
