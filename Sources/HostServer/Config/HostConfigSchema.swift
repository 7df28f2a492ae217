import JSON
import Schema

/// `schemas/host-config.schema.json`, embedded so a copied binary needs no resources folder
/// (ServerTests checks that the text equals the file).
public enum HostConfigSchema {
    /// The schema text.
    public static let text = #"""
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://nova-host.dev/schemas/host-config.schema.json",
  "title": "nova-host serve configuration",
  "description": "Listen address, credentials (API keys stored as SHA-256 hashes, JWT keys), CORS, limits and metrics for `nova-host serve`. Relative file paths are resolved against the directory of the configuration file.",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "$schema": { "type": "string" },
    "listen": {
      "description": "Where to listen. Binds to 127.0.0.1 unless told otherwise.",
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "host": { "type": "string", "minLength": 1, "default": "127.0.0.1" },
        "port": { "type": "integer", "minimum": 0, "maximum": 65535, "default": 8787 }
      }
    },
    "api_keys": {
      "description": "API keys, accepted as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Only the SHA-256 of each key is stored (`printf %s \"$KEY\" | sha256sum`).",
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "sha256", "principal", "role"],
        "properties": {
          "id": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$", "description": "A name for the key (logs, metrics); never the key itself." },
          "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$", "description": "Lowercase hex SHA-256 of the key." },
          "principal": { "type": "string", "minLength": 1, "description": "The principal the policy decides for." },
          "role": { "type": "string", "minLength": 1, "description": "A role of the policy profile." }
        }
      }
    },
    "jwt": {
      "description": "JWT bearer tokens: HS256, RS256 or EdDSA (Ed25519). `exp` is required; `iss`, `aud` and `nbf` are checked.",
      "type": "object",
      "additionalProperties": false,
      "required": ["issuer", "audience", "keys"],
      "properties": {
        "issuer": { "type": "string", "minLength": 1 },
        "audience": { "type": "string", "minLength": 1 },
        "role_claim": { "type": "string", "minLength": 1, "default": "role", "description": "The claim holding the caller's role (a string, or an array whose first policy role is used)." },
        "principal_claim": { "type": "string", "minLength": 1, "default": "sub" },
        "leeway_seconds": { "type": "integer", "minimum": 0, "maximum": 300, "default": 30 },
        "max_lifetime_seconds": { "type": "integer", "minimum": 1, "description": "Reject tokens whose exp is further than this in the future." },
        "keys": {
          "type": "array",
          "minItems": 1,
          "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["alg"],
            "properties": {
              "kid": { "type": "string", "minLength": 1 },
              "alg": { "enum": ["HS256", "RS256", "EdDSA"] },
              "secret": { "type": "string", "minLength": 32, "description": "HS256 secret inline (prefer secret_env or secret_file)." },
              "secret_env": { "type": "string", "minLength": 1, "description": "Environment variable holding the HS256 secret." },
              "secret_file": { "type": "string", "minLength": 1 },
              "public_key_pem": { "type": "string", "minLength": 1, "description": "RS256 or EdDSA public key, PEM." },
              "public_key_file": { "type": "string", "minLength": 1 }
            },
            "oneOf": [
              { "properties": { "alg": { "const": "HS256" } }, "oneOf": [ { "required": ["secret"] }, { "required": ["secret_env"] }, { "required": ["secret_file"] } ] },
              { "properties": { "alg": { "enum": ["RS256", "EdDSA"] } }, "oneOf": [ { "required": ["public_key_pem"] }, { "required": ["public_key_file"] } ] }
            ]
          }
        }
      }
    },
    "admin_roles": {
      "description": "Roles that may see every principal's runs and episodes and reload drivers.",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "default": ["admin"]
    },
    "cors": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "allowed_origins": { "type": "array", "items": { "type": "string", "pattern": "^https?://[^/]+$" }, "default": [] },
        "max_age_seconds": { "type": "integer", "minimum": 0, "default": 600 }
      }
    },
    "body_limit_bytes": { "type": "integer", "minimum": 1024, "maximum": 67108864, "default": 1048576 },
    "metrics": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "public": { "type": "boolean", "default": false, "description": "Serve /metrics without credentials." }
      }
    },
    "ready": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "public": { "type": "boolean", "default": false, "description": "Answer /ready without credentials with the status only (200 ready / 503 not_ready); callers with credentials also get the checks." }
      }
    },
    "mcp": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "allowed_origins": { "type": "array", "items": { "type": "string", "pattern": "^https?://[^/]+$" }, "description": "Origins allowed on /mcp besides localhost and cors.allowed_origins.", "default": [] },
        "allowed_hosts": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "Host header values accepted on /mcp (DNS-rebinding protection). Default: localhost names when bound to loopback, anything otherwise." },
        "session_idle_seconds": { "type": "integer", "minimum": 1, "default": 3600 },
        "max_sessions": { "type": "integer", "minimum": 1, "default": 1000 }
      }
    },
    "tool_timeout_ms": { "type": "integer", "minimum": 1, "default": 60000, "description": "Deadline of one tool call through POST /tools/{id} and MCP tools/call." },
    "event_loop_threads": { "type": "integer", "minimum": 1, "maximum": 256, "description": "Threads of the HTTP server's event loops (socket I/O and HTTP parsing). Default: half the cores, at least one; the requests' own work runs on Swift's concurrency pool, one thread per core." },
    "shutdown_grace_seconds": { "type": "number", "minimum": 0, "default": 30, "description": "How long in-flight runs may finish on SIGTERM/SIGINT before they are cancelled: queued runs go back to the queue, direct calls are recorded as interrupted." },
    "paths": {
      "type": "object", "additionalProperties": false,
      "description": "Where serve finds its drivers, policy profile, driver settings, data directory and templates directory, relative to this file (what `nova-host init` writes). A flag (--drivers, --policy, --driver-config, --data, --templates) or its environment variable takes precedence.",
      "properties": {
        "drivers": { "type": "string", "minLength": 1 },
        "policy": { "type": "string", "minLength": 1 },
        "driver_config": { "type": "string", "minLength": 1 },
        "data": { "type": "string", "minLength": 1 },
        "templates": { "type": "string", "minLength": 1 }
      }
    },
    "store": { "type": "string", "minLength": 1, "description": "Where episodes, state and the job queue live: sqlite (files and <data>/nova.sqlite) or a postgres://user:password@host:port/db URL shared by several hosts. --store and NOVA_STORE take precedence." },
    "runs": {
      "type": "object", "additionalProperties": false,
      "description": "Runs submitted with POST /v1/runs (queued jobs).",
      "properties": {
        "max_attempts": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 3, "description": "Attempts of a queued run before its job is dead (an attempt ends early only when its worker dies or cannot record the run)." },
        "idempotency_ttl_seconds": { "type": "integer", "minimum": 1, "default": 86400, "description": "How long an Idempotency-Key names its run." },
        "queues": { "type": "array", "items": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$" }, "minItems": 1, "default": ["default"], "description": "The queues a run may be submitted to (the request's queue field; the first is the default)." }
      }
    },
    "worker": {
      "type": "object", "additionalProperties": false,
      "description": "The job worker inside nova-host serve (nova-host worker takes the same settings as options).",
      "properties": {
        "enabled": { "type": "boolean", "default": true, "description": "Execute queued runs in this server; false leaves them to nova-host worker processes." },
        "queues": { "type": "array", "items": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$" }, "minItems": 1, "default": ["default"] },
        "concurrency": { "type": "integer", "minimum": 1, "maximum": 1024, "default": 4, "description": "Jobs at once." },
        "lease_seconds": { "type": "number", "minimum": 0.05, "default": 30, "description": "A job whose worker stops heartbeating is given to another worker after this long." },
        "poll_ms": { "type": "integer", "minimum": 10, "default": 1000, "description": "Backstop poll when no wake-up arrives." },
        "retention_hours": { "type": "number", "minimum": 0, "default": 168, "description": "Succeeded and cancelled jobs are pruned after this long (dead ones stay until retried or discarded)." }
      }
    }
  }
}
"""#

    /// The compiled schema (nil only if the embedded text were broken: a build bug).
    public static let compiled: CompiledSchema? = {
        guard let json = try? JSONValue.parse(text) else { return nil }
        return try? Schema.compile(json)
    }()
}
