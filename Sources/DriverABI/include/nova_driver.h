/*
 * nova_driver.h — the nova-host driver ABI, version 1.1.
 *
 * This header is the only contract between nova-host and a driver. A driver is a shared
 * library (.so) that exports ONE symbol, `nova_driver_init`, and fills a table of function
 * pointers. Everything else crosses as UTF-8 JSON in {ptr, len} buffers.
 *
 * A stranger should be able to build a driver from this file alone:
 *
 *     cc -shared -fPIC -I<dir of this header> -o libnova_mydrv.so mydrv.c
 *
 * (with the header installed: cc -shared -fPIC $(pkg-config --cflags nova-driver) …) and drop
 * the .so into the host's drivers directory. A strict `-std=c11` build must define
 * `_POSIX_C_SOURCE 200809L` before any #include to get clock_gettime(CLOCK_MONOTONIC), the
 * clock of `deadline_ns`. See examples/drivers/c-echo/echo.c for a complete driver in about
 * 200 lines of C, and check a built driver with `nova-host drivers test libnova_<name>.so`.
 *
 * ------------------------------------------------------------------------------------------
 * COMPATIBILITY RULES (append-only, like adbc.h and sqlite3ext.h)
 *  1. Every struct begins with `uint32_t struct_size; uint16_t abi_major; uint16_t abi_minor;`.
 *  2. A new minor version only ever APPENDS fields at the END of a struct. Nothing is removed,
 *     reordered or retyped within a major version.
 *  3. A reader treats a field that lies past the writer's `struct_size`, or a NULL function
 *     pointer, as "not supported".
 *  4. The host refuses a driver whose major differs from its own, and accepts a driver whose
 *     minor is less than or equal to its own.
 *  5. Every field added after 1.0 says `since 1.N` in its comment, and each struct has a size
 *     macro per minor, NOVA_<STRUCT>_SIZE_1_N: the end of the fields 1.N defines. A field is
 *     present when struct_size >= the size macro of the minor that added it. Minors so far:
 *     1.0, and 1.1 (instance tool lists that change after load: nova_driver.describe_instance
 *     and .refresh, nova_host_api.tools_changed; see INSTANCE TOOLS below).
 *
 * NAMING
 *  The host finds the driver's *name* from the file name without opening it:
 *  `libnova_<name>.so`, `nova_<name>.so` or `<name>.so`. On first use of a tool `<name>.<tool>`
 *  it dlopens that file (RTLD_NOW | RTLD_LOCAL), calls `nova_driver_init` and checks that the
 *  manifest's "name" equals <name>. The entry symbol is never derived from the file name.
 *
 * MEMORY OWNERSHIP (the one rule: never free the other side's memory)
 *  - A `nova_buf` passed INTO a function is BORROWED: valid only until that function returns.
 *    Copy it if you need it later.
 *  - `describe` hands out a buffer owned by the DRIVER that must stay valid and unchanged until
 *    `shutdown` returns (a static string or a buffer kept in the driver context).
 *  - `describe_instance` (since 1.1) hands out a DRIVER-owned buffer valid until the next
 *    `describe_instance` of that instance or its `destroy`; the host copies it.
 *  - Results are handed to the host through `nova_host_api.complete`; the host COPIES the
 *    output during that call, so the driver may free or reuse it as soon as `complete` returns.
 *  - Error text for `create` is written into a host-provided character array.
 *
 * THREADS
 *  Each function pointer's comment says from which threads it may be called. The host never
 *  calls `describe`, `create`, `destroy` or `shutdown` concurrently for one driver
 *  generation. `call` and `cancel` on one instance are serialized by the host unless the
 *  manifest declares "concurrency": "thread_safe". Host services (`log`, `complete`,
 *  `is_cancelled`, `report_usage`, and since 1.1 `tools_changed`) may be called from ANY
 *  thread, including threads the driver created, at any time until `shutdown` returns.
 *
 * WHAT NEVER CROSSES
 *  C++ exceptions, Swift errors, longjmp, signals: a driver catches its own failures and turns
 *  them into a status and an error JSON. Drivers never write to stdout or stderr; they log
 *  through `nova_host_api.log`.
 * ------------------------------------------------------------------------------------------
 */
#ifndef NOVA_DRIVER_H
#define NOVA_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. */
#define NOVA_ABI_MAJOR 1
#define NOVA_ABI_MINOR 1

/** The one symbol every driver exports (see nova_driver_init_fn). */
#define NOVA_DRIVER_INIT_SYMBOL "nova_driver_init"

/** Marks the entry point for export from a shared library built with -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define NOVA_EXPORT __attribute__((visibility("default")))
#else
#define NOVA_EXPORT
#endif

/* ---------------------------------------------------------------------------------------- */
/* Status codes                                                                              */
/* ---------------------------------------------------------------------------------------- */

/**
 * Status codes returned by driver functions and passed to `complete`.
 * Zero and positive values are successes; negative values are failures.
 * New codes may be appended in later minors; treat an unknown negative code as NOVA_ERR_INTERNAL.
 */
typedef int32_t nova_status;
enum {
  /** Success. For `call`: the driver already called `complete` before returning. */
  NOVA_OK = 0,
  /** `call` only: accepted; the driver WILL call `complete` exactly once, later, from any thread. */
  NOVA_PENDING = 1,

  /** The driver cannot serve the ABI version the host asked for (see nova_driver_init_fn). */
  NOVA_ERR_VERSION = -1,
  /** The input or configuration is not acceptable (bad JSON, schema mismatch, bad value). */
  NOVA_ERR_INVALID_ARGUMENT = -2,
  /** The tool name is not one this driver provides. */
  NOVA_ERR_UNKNOWN_TOOL = -3,
  /** The tool ran and failed (a refused connection, an SQL error, a non-zero exit...). */
  NOVA_ERR_TOOL = -4,
  /** The call was cancelled (`is_cancelled` returned 1 before its deadline, or `cancel` was called). */
  NOVA_ERR_CANCELLED = -5,
  /** The call's deadline passed before it finished. */
  NOVA_ERR_DEADLINE = -6,
  /** A bug or an unexpected condition inside the driver. */
  NOVA_ERR_INTERNAL = -7,
  /** The operation is not supported by this driver. */
  NOVA_ERR_UNSUPPORTED = -8,
};

/**
 * Error codes: the "code" of the error object a call completes with when its status is
 * negative ({"code": "...", "message": "..."}). The host maps the STATUS to its error kind
 * (recorded in episodes and shown by every interface); the code is shown as is. A driver may
 * use a code of its own that says more (e.g. "egress_denied" with NOVA_ERR_TOOL); these are the
 * generic ones, one per status, which the host also uses when the error object is empty.
 */
#define NOVA_CODE_INVALID_ARGUMENT "invalid_argument" /* NOVA_ERR_INVALID_ARGUMENT */
#define NOVA_CODE_UNKNOWN_TOOL "unknown_tool"         /* NOVA_ERR_UNKNOWN_TOOL */
#define NOVA_CODE_TOOL "tool"                         /* NOVA_ERR_TOOL */
#define NOVA_CODE_CANCELLED "cancelled"               /* NOVA_ERR_CANCELLED */
#define NOVA_CODE_DEADLINE "deadline"                 /* NOVA_ERR_DEADLINE */
#define NOVA_CODE_INTERNAL "internal"                 /* NOVA_ERR_INTERNAL (and unknown statuses) */
#define NOVA_CODE_UNSUPPORTED "unsupported"           /* NOVA_ERR_UNSUPPORTED */

/* ---------------------------------------------------------------------------------------- */
/* Buffers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/**
 * A borrowed run of bytes, normally UTF-8 JSON. NOT NUL-terminated; always use `len`.
 * `ptr` may be NULL only when `len` is 0. Who owns the memory is stated wherever a
 * nova_buf appears; the default is "borrowed for the duration of the call".
 */
typedef struct nova_buf {
  const uint8_t *ptr;
  size_t len;
} nova_buf;

/* ---------------------------------------------------------------------------------------- */
/* Log levels and channels                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef int32_t nova_log_level;
enum {
  NOVA_LOG_TRACE = 0,
  NOVA_LOG_DEBUG = 1,
  NOVA_LOG_INFO = 2,
  NOVA_LOG_WARNING = 3,
  NOVA_LOG_ERROR = 4,
};

/** Log channels. stdout and stderr are never a channel: drivers must not write to them. */
#define NOVA_CHANNEL_SYSTEM_LOG "system_log"         /* operators' diagnostics */
#define NOVA_CHANNEL_HUMAN_UI "human_ui"             /* shown to a person watching a run */
#define NOVA_CHANNEL_MODEL_INSTRUCTION "model_instruction" /* text meant for the calling model */

/* ---------------------------------------------------------------------------------------- */
/* Usage reporting (for budgets)                                                             */
/* ---------------------------------------------------------------------------------------- */

/**
 * What one call consumed, reported through `nova_host_api.report_usage`. The host charges it
 * against the run's and the principal's budgets. Memory: borrowed for the duration of
 * `report_usage`.
 */
typedef struct nova_usage {
  uint32_t struct_size; /* sizeof(nova_usage) as the driver compiled it */
  uint16_t abi_major;
  uint16_t abi_minor;
  /** Model or API tokens consumed by this call (0 if none). */
  uint64_t tokens;
  /** Cost in millionths of the deployment's cost unit (0 if unknown). */
  uint64_t cost_micros;
} nova_usage;

/** The end of the 1.0 fields of nova_usage. */
#define NOVA_USAGE_SIZE_1_0 (offsetof(nova_usage, cost_micros) + sizeof(uint64_t))

/* ---------------------------------------------------------------------------------------- */
/* Host services — filled by the host, passed to nova_driver_init                            */
/* ---------------------------------------------------------------------------------------- */

/** An opaque driver instance created by `create`. */
typedef struct nova_instance nova_instance;

/**
 * Services the host offers the driver. The struct and everything it points to are owned by
 * the host and stay valid until the driver's `shutdown` returns; the driver keeps the pointer
 * it receives in `nova_driver_init` (it need not copy the struct).
 */
typedef struct nova_host_api {
  uint32_t struct_size; /* sizeof(nova_host_api) as the host compiled it */
  uint16_t abi_major;   /* the host's ABI major */
  uint16_t abi_minor;   /* the ABI minor the host is negotiating in this init call */

  /** Opaque host state; pass it back as the first argument of every service below. */
  void *host_ctx;

  /**
   * Write one log record. `channel` is a NUL-terminated string (one of NOVA_CHANNEL_*);
   * `message` is UTF-8 text. Both are borrowed for the duration of the call.
   * Where records go: `nova-host serve` and `mcp` write each as a JSON log line on stderr
   * (level mapped from NOVA_LOG_*, fields driver, generation, channel, and call_id / run_id
   * when logged from inside `call` on the calling thread) and `serve` counts them in
   * nova_driver_log_records_total{driver,level}; `nova-host run` prints them on stderr from
   * --log-level (default warning; -v = debug). The server's own --log-level filters too.
   * Records of a process-isolated driver are forwarded by its runner the same way.
   * Thread: any. Never blocks for long; may drop records under pressure.
   */
  void (*log)(void *host_ctx, nova_log_level level, const char *channel, nova_buf message);

  /**
   * Finish call `call_id`. Must be called EXACTLY ONCE for every `call` that returned NOVA_OK
   * (before returning) or NOVA_PENDING (at any later time), and never for a call that returned
   * a negative status.
   *   status == NOVA_OK: `output` is the tool's result, a JSON value.
   *   status <  0      : `output` is an error object {"code": "...", "message": "..."}
   *                      (extra fields allowed) or empty, in which case the host makes one.
   * `output` is borrowed: the host copies it before `complete` returns.
   * Thread: any. A completion that arrives after the host gave up on the call (deadline) is
   * accepted and discarded.
   */
  void (*complete)(void *host_ctx, uint64_t call_id, nova_status status, nova_buf output);

  /**
   * Returns 1 if call `call_id` has been cancelled or its deadline has passed, 0 otherwise
   * (also 0 for an unknown id). Cheap enough to poll in a loop. Thread: any.
   */
  int32_t (*is_cancelled)(void *host_ctx, uint64_t call_id);

  /**
   * Report what call `call_id` consumed. May be called several times per call (values add up),
   * but only before that call's `complete`. `usage` is borrowed. Thread: any.
   */
  void (*report_usage)(void *host_ctx, uint64_t call_id, const nova_usage *usage);

  /* --- ABI 1.0 ends here. --- */

  /**
   * since 1.1. Tell the host that `instance`'s tool list changed (see INSTANCE TOOLS): the host
   * calls the driver's `describe_instance` for it again, LATER, from a host thread of its own,
   * never inside this function, so the driver may call it while holding its own locks.
   * Calls already routed to a tool that disappears still reach the driver (answer them with
   * NOVA_ERR_UNKNOWN_TOOL). Several notifications in a row may be coalesced into one
   * `describe_instance`. Thread: any, also the driver's own threads, until `destroy` of
   * `instance` returns (a notification for an instance being destroyed is ignored).
   * Check `struct_size >= NOVA_HOST_API_SIZE_1_1` before using it: a 1.0 host has no such field.
   */
  void (*tools_changed)(void *host_ctx, nova_instance *instance);

  /* --- ABI 1.1 ends here. Later minors append fields below this line. --- */
} nova_host_api;

/** The end of the 1.0 fields of nova_host_api. */
#define NOVA_HOST_API_SIZE_1_0 (offsetof(nova_host_api, report_usage) + sizeof(void (*)(void)))
/** The end of the 1.1 fields of nova_host_api. */
#define NOVA_HOST_API_SIZE_1_1 (offsetof(nova_host_api, tools_changed) + sizeof(void (*)(void)))

/* ---------------------------------------------------------------------------------------- */
/* One tool call                                                                             */
/* ---------------------------------------------------------------------------------------- */

/**
 * One tool call, passed to `call`. The struct and every buffer in it are owned by the host and
 * borrowed by the driver for the duration of `call` only: a driver that answers later
 * (NOVA_PENDING) copies what it needs before returning.
 */
typedef struct nova_call {
  uint32_t struct_size; /* sizeof(nova_call) as the host compiled it */
  uint16_t abi_major;
  uint16_t abi_minor;

  /** Unique within the host process; pass it to `complete`, `is_cancelled`, `report_usage`. */
  uint64_t call_id;
  /** The tool's name as listed in the manifest, WITHOUT the "<driver>." prefix. UTF-8. */
  nova_buf tool;
  /** The tool's input: one JSON value that the host validated against the tool's inputSchema. */
  nova_buf input;
  /**
   * Absolute deadline on CLOCK_MONOTONIC, in nanoseconds (clock_gettime(CLOCK_MONOTONIC)
   * tv_sec * 1e9 + tv_nsec); 0 means no deadline. A driver that sees the deadline pass should
   * stop and complete with NOVA_ERR_DEADLINE. The host stops waiting at the deadline anyway.
   */
  int64_t deadline_ns;

  /* --- ABI 1.0 ends here. Later minors append fields below this line. --- */
} nova_call;

/** The end of the 1.0 fields of nova_call. */
#define NOVA_CALL_SIZE_1_0 (offsetof(nova_call, deadline_ns) + sizeof(int64_t))

/* ---------------------------------------------------------------------------------------- */
/* The driver's function table — filled by the driver in nova_driver_init                    */
/* ---------------------------------------------------------------------------------------- */

/**
 * The driver's function table. The HOST allocates it and sets `struct_size`, `abi_major` and
 * `abi_minor` to what it offers before calling `nova_driver_init`; the DRIVER fills it and
 * writes back the version and size it actually filled.
 */
typedef struct nova_driver {
  /**
   * In: sizeof(nova_driver) as the host compiled it (the driver must not write past it).
   * Out: the number of bytes the driver filled: at least NOVA_DRIVER_SIZE_1_0.
   */
  uint32_t struct_size;
  /** In: the host's major. Out: the driver's major (the host refuses a different one). */
  uint16_t abi_major;
  /** In: the minor the host offers. Out: the minor the driver filled the table for (<= offered). */
  uint16_t abi_minor;

  /** Opaque driver-wide state; passed back as the first argument of describe/create/shutdown. */
  void *driver_ctx;

  /**
   * Return the manifest: a JSON object (see MANIFEST below) in `*manifest_out`. The buffer is
   * owned by the driver and must stay valid and unchanged until `shutdown` returns.
   * Thread: any host thread, never concurrently with create/destroy/shutdown. Required.
   */
  nova_status (*describe)(void *driver_ctx, nova_buf *manifest_out);

  /**
   * Create an instance from `config` (a JSON object, borrowed; "{}" when the host has no
   * configuration for this driver). On success store the instance in `*instance_out` and
   * return NOVA_OK. On failure return a negative status and write a NUL-terminated UTF-8
   * message of at most `error_cap` bytes (including the NUL) into `error` (host-owned).
   * Thread: any host thread, never concurrently with describe/destroy/shutdown. Required.
   */
  nova_status (*create)(void *driver_ctx, nova_buf config, nova_instance **instance_out,
                        char *error, size_t error_cap);

  /**
   * Destroy an instance. The host calls it only when no call on the instance is in flight
   * (every `call` has been completed): when a reload retires the generation, and on orderly
   * exit (`nova-host run` ends, `serve` or `mcp` stops on SIGTERM/SIGINT or end of input) after
   * the calls in flight end (a call still running after 10 s keeps its instance alive: it is
   * then not destroyed). A process-isolated driver's runner does the same when the host closes
   * its socket. Not called when the host is killed. Thread: any host thread. Required.
   */
  void (*destroy)(nova_instance *instance);

  /**
   * Start one tool call. Either
   *   - finish it now: call host->complete(call_id, ...) and return NOVA_OK; or
   *   - accept it: copy what you need from `call`, return NOVA_PENDING, and call
   *     host->complete exactly once later from any thread; or
   *   - refuse it: return a negative status WITHOUT calling complete (the host reports
   *     the status as the call's error).
   * `call` is borrowed for the duration of this function. Must not block for long: work that
   * takes time (I/O, sleeping, child processes) goes async so that 1,000 calls in flight do not
   * need 1,000 host threads.
   * Thread: any host thread; serialized per instance unless the manifest says
   * "concurrency": "thread_safe". Required.
   */
  nova_status (*call)(nova_instance *instance, const nova_call *call);

  /**
   * Ask the driver to stop call `call_id` early. The call must still be completed exactly once
   * (normally with NOVA_ERR_CANCELLED). The host marks the call cancelled first, so drivers that
   * poll `is_cancelled` may leave this NULL. Return NOVA_OK (also when the call already
   * finished or the id is unknown: the cancel raced with a completion); the host does not act
   * on the return value. The host calls it when a caller cancels (a client disconnects, a run is
   * cancelled), NOT at the deadline: `is_cancelled` turns 1 then without a `cancel`.
   * It may run while another of the driver's threads is completing the same call: whichever
   * comes first, `complete` is still called exactly once.
   * Thread: any host thread, serialized like `call`. Optional (NULL = not supported).
   */
  nova_status (*cancel)(nova_instance *instance, uint64_t call_id);

  /**
   * The host is done with this driver generation (reload, or orderly exit as for `destroy`):
   * every instance has been destroyed. Release
   * driver-wide resources. The host does not dlclose the library afterwards (unloading a Swift
   * or C++ runtime image is unsafe), so static state may stay. Thread: any host thread, once.
   * Optional (NULL = nothing to do).
   */
  void (*shutdown)(void *driver_ctx);

  /* --- ABI 1.0 ends here. --- */

  /**
   * since 1.1. The instance's own tool list (see INSTANCE TOOLS): a JSON object
   * {"tools": [...]} in `*tools_out`, each tool shaped and checked as in the MANIFEST's "tools",
   * which it REPLACES for this instance (the other manifest fields stay the driver's). The
   * buffer is owned by the driver and must stay valid and unchanged until the next
   * `describe_instance` of the same instance or its `destroy`; the host copies it before
   * either. Return NOVA_ERR_UNSUPPORTED to use the manifest's tools.
   * The host calls it once after `create` (before routing the instance's first call) and again
   * after each `tools_changed` for the instance.
   * Thread: any host thread; never concurrently with itself or `destroy` for one instance, but
   * it MAY run concurrently with `call` and `cancel`. Must not block for long (return the list
   * the driver holds; fetch a new one elsewhere and signal `tools_changed`). Optional (NULL,
   * or a 1.0 table: the manifest's tools).
   */
  nova_status (*describe_instance)(nova_instance *instance, nova_buf *tools_out);

  /**
   * since 1.1. The operator asked the host to reload its drivers (SIGHUP, `nova-host drivers
   * reload`, POST /v1/drivers/reload) and this instance's library did not change, so it keeps
   * serving: re-read what the instance caches from outside (a remote tool list) and, if its
   * tools changed, signal `tools_changed` when the new list is ready. Return at once (NOVA_OK);
   * do the work on the driver's own threads. Calls keep flowing meanwhile.
   * Thread: any host thread, serialized like `call`. Optional (NULL = nothing to refresh).
   */
  nova_status (*refresh)(nova_instance *instance);

  /* --- ABI 1.1 ends here. Later minors append fields below this line. --- */
} nova_driver;

/** The smallest `struct_size` a 1.x driver may report: the end of the 1.0 fields. */
#define NOVA_DRIVER_SIZE_1_0 (offsetof(nova_driver, shutdown) + sizeof(void (*)(void *)))
/** The end of the 1.1 fields of nova_driver (a driver that fills describe_instance/refresh). */
#define NOVA_DRIVER_SIZE_1_1 (offsetof(nova_driver, refresh) + sizeof(void (*)(void)))

/**
 * The entry point, exported as NOVA_DRIVER_INIT_SYMBOL:
 *
 *     NOVA_EXPORT nova_status nova_driver_init(const nova_host_api *host, nova_driver *out);
 *
 * Version negotiation: the host sets out->abi_major/abi_minor to the version it offers and
 * out->struct_size to its sizeof(nova_driver), then calls init.
 *   - If out->abi_major differs from the driver's major: write the driver's own major and minor
 *     into out->abi_major/abi_minor and return NOVA_ERR_VERSION (so the host can name both
 *     versions in its error).
 *   - If the offered minor is older than the driver's minor, the driver may fill the table as
 *     that older minor defines it (and return NOVA_OK), or write its own version and return
 *     NOVA_ERR_VERSION; the host may then retry with an older minor.
 *   - Otherwise fill at most out->struct_size bytes, set out->struct_size to the size filled,
 *     out->abi_minor to the minor filled, and return NOVA_OK.
 * `host` stays valid until `shutdown` returns; keep the pointer.
 * Thread: called once per load (per generation), from one host thread. Must not call back
 * into `host->complete`.
 */
typedef nova_status (*nova_driver_init_fn)(const nova_host_api *host, nova_driver *out);

/*
 * LIFECYCLE AND THREADING
 *
 *  init     Once per load of a generation. The image is mapped once per process and never
 *           unmapped, so `nova_driver_init` may run MORE THAN ONCE in one image: a reload
 *           A→B→A maps A's file again (the same mapping), and two registries in one process
 *           load the same file. Each init gets a new `host` (a new host_ctx). Keeping the latest
 *           `host` in a static is safe: call ids are unique in the process, and a callback
 *           (`complete`, `is_cancelled`, `report_usage`, `log`) made through any generation's
 *           host_ctx reaches the generation that owns the call. Keep everything else that is
 *           per generation in `driver_ctx`, not in statics.
 *  describe, create
 *           After init, from a host thread, never concurrently with each other, destroy or
 *           shutdown of the same generation.
 *  call     NOVA_OK means "completed already": `complete` was called before `call` returned,
 *           WHATEVER its status (a tool error is completed with a negative status and the call
 *           still returns NOVA_OK). NOVA_PENDING means "will complete later, from any thread".
 *           A negative return means "refused": `complete` must not be called for that id.
 *  complete Exactly once per call that was not refused, from any thread, also for a call the
 *           host stopped waiting for (deadline, cancel): the host waits for that completion
 *           before it destroys the instance. A second `complete` for one id is ignored.
 *  deadline `is_cancelled` returns 1 once the deadline passes, as it does after a cancel; the
 *           host does not call `cancel` at the deadline. To tell the two apart compare
 *           CLOCK_MONOTONIC with `deadline_ns`: past it, it is the deadline (complete with
 *           NOVA_ERR_DEADLINE). A driver that answers NOVA_ERR_CANCELLED for a call whose
 *           deadline passed and that nobody cancelled is recorded as `deadline` anyway.
 *  destroy  After the instance's LAST completion (including calls the host gave up on), on a
 *           host thread of its own, never inside `complete`, so `destroy` may join the threads
 *           that completed. When it returns, no thread of the driver may call the host for that
 *           instance's calls.
 *  shutdown Once per generation, after every instance of it was destroyed. When it returns the
 *           driver must have stopped calling the host through that generation's `host`.
 *  exit     On orderly exit (`run` ends, `serve`/`mcp` stop on SIGTERM, SIGINT or end of
 *           input) calls in flight get 10 s; then instances with no call left are destroyed and
 *           their generations shut down. An instance whose call is still running is neither
 *           destroyed nor shut down, and a process that is killed runs neither.
 *  log      Any thread, any time until shutdown returns; records go where the `log` field
 *           above says (structured stderr log lines, counted in metrics).
 *
 * Check a driver against these rules with `nova-host drivers test libnova_<name>.so`: it loads
 * the library in a child process, calls every tool's "examples", and reports calls completed
 * twice or never, NOVA_OK returned before `complete`, and calls not completed after a deadline
 * or cancel.
 */

/*
 * INSTANCE TOOLS (since 1.1)
 *
 *  The manifest from `describe` is the driver's, fixed for a generation. A driver whose tools
 *  depend on its instance configuration or on the outside world (a proxy for remote tool
 *  servers) also fills `describe_instance`: the host then lists, validates and routes the
 *  tools of THAT instance, which may change while it lives. The rules:
 *   - The manifest from `describe` still needs at least one tool (something that works
 *     without configuration, e.g. a status tool); `drivers inspect` of a driver that is not
 *     loaded shows it.
 *   - A list from `describe_instance` is checked like a manifest (schemas/manifest.schema.json,
 *     every schema compiles, names unique). A list that fails is refused: the host logs why
 *     and keeps the instance's previous list.
 *   - Tool names may contain dots ("files.read"): the first dot of a tool id separates the
 *     driver ("mcp_proxy.files.read" is tool "files.read" of driver "mcp_proxy").
 *   - Policy, budgets, input validation and episodes apply to instance tools exactly as to
 *     manifest tools: they are checked by the host before the driver sees a call.
 *   - Negotiation: a 1.1 host offers minor 1. A driver that fills these fields reports
 *     abi_minor 1 and struct_size >= NOVA_DRIVER_SIZE_1_1; offered minor 0 (a 1.0 host), it
 *     fills the 1.0 table and its instances show the manifest's tools.
 */

/*
 * MANIFEST (the JSON returned by `describe`; tool descriptors follow MCP's Tool shape)
 *
 * {
 *   "name": "echo",                       // must equal the name in the file name
 *   "version": "1.2.0",                   // the driver's own version (semver)
 *   "description": "Echoes its input",
 *   "concurrency": "serialized",          // or "thread_safe" (see `call`)
 *   "permissions": {                      // what the driver needs; policy may refuse it
 *      "network": false, "filesystem": false, "process": false },
 *   "tools": [
 *     { "name": "echo",                   // called as "echo.echo"; [A-Za-z0-9_-]+, and
 *                                         // since 1.1 dot-separated parts of those ("a.b")
 *       "description": "Return the input unchanged",
 *       "inputSchema":  { "type": "object", ... },   // JSON Schema 2020-12
 *       "outputSchema": { ... },                     // optional
 *       "annotations": { "readOnlyHint": true, "destructiveHint": false,
 *                        "idempotentHint": true, "openWorldHint": false },
 *       "policyInputs": { "url": "/target" } }      // optional, see below
 *   ]
 * }
 *
 * "policyInputs" (optional, per tool) says which input fields policy conditions may read, as
 * JSON Pointers (RFC 6901) into the tool's input. Conditions never read raw field names, so a
 * tool that does not declare an attribute never satisfies a condition over it, and a rule that
 * names the tool exactly with such a condition is refused (reload, `nova-host policy validate`)
 * and denies the call. Attributes: "url" (absolute URL; http_hosts), "program" (absolute path;
 * shell_programs, shell_args), "args" (array of strings; shell_args), "allow_write" (boolean;
 * postgres_read_only refuses true), "graphql_document" (GraphQL text; graphql_operations),
 * "namespace" (a shared namespace; namespaces).
 * Unknown attribute names are manifest errors. See docs/policy-inputs.md.
 *
 * "examples" (optional, per tool): sample calls for `nova-host drivers test`:
 *   [{"input": {...}}, {"input": {...}, "error": "code", "description": "..."}]
 * Each input must pass inputSchema; without "error" the call must succeed (and its output
 * pass outputSchema), with "error" it must fail with that code.
 *
 * RULES the host enforces when it loads the driver (schemas/manifest.schema.json is the whole
 * schema; a manifest that breaks one is refused and the load error names the field):
 *   - "name" (required) matches ^[a-z0-9_-]{1,64}$ and equals the name in the file name;
 *   - "version" (required) is a non-empty string;
 *   - "tools" (required) holds at least one tool; tool names are 1 to 128 characters of
 *     [A-Za-z0-9_-] parts joined by single dots (^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$; dots
 *     since 1.1) and are unique; "description" and "inputSchema" are required;
 *   - "inputSchema" and "outputSchema" must compile as JSON Schema 2020-12. Every call's input
 *     is validated against inputSchema before the driver sees it; when "outputSchema" is
 *     given, every successful output is validated against it and one that does not match is
 *     recorded as an error (code "output_schema"), not passed on;
 *   - an input property marked "x-secret": true is redacted in episodes and logs.
 */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NOVA_DRIVER_H */
