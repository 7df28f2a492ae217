/*
 * c-crash — a driver that crashes on demand, to show what process isolation protects.
 *
 *   crash.ok     returns its input
 *   crash.segv   dereferences NULL (SIGSEGV)
 *   crash.abort  calls abort() (SIGABRT)
 *   crash.exit   calls exit(7) in the middle of a call
 *
 * Run it with `"isolation": "process"` (configs/host.json): the runner child dies, the calls in
 * flight fail with a clear error, the host keeps serving. In process, it takes the host down
 * with it — that mode is unprotected by design.
 *
 *     cc -std=c11 -shared -fPIC -fvisibility=hidden -I../../../Sources/DriverABI/include \
 *        -o libnova_crash.so crash.c
 */
#include "nova_driver.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char MANIFEST[] =
    "{\"name\":\"crash\",\"version\":\"1.0.0\",\"description\":\"Crashes on demand (process isolation demo).\","
    "\"concurrency\":\"thread_safe\",\"tools\":["
    "{\"name\":\"ok\",\"description\":\"Return the input.\",\"inputSchema\":{\"type\":\"object\"},"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,\"idempotentHint\":true,\"openWorldHint\":false}},"
    "{\"name\":\"segv\",\"description\":\"Dereference NULL.\",\"inputSchema\":{\"type\":\"object\"},"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,\"idempotentHint\":false,\"openWorldHint\":false}},"
    "{\"name\":\"abort\",\"description\":\"Call abort().\",\"inputSchema\":{\"type\":\"object\"},"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,\"idempotentHint\":false,\"openWorldHint\":false}},"
    "{\"name\":\"exit\",\"description\":\"Call exit(7).\",\"inputSchema\":{\"type\":\"object\"},"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,\"idempotentHint\":false,\"openWorldHint\":false}}]}";

static const nova_host_api *g_host;
static int g_instance;

static nova_status c_describe(void *ctx, nova_buf *out) {
  (void)ctx;
  out->ptr = (const uint8_t *)MANIFEST;
  out->len = sizeof MANIFEST - 1;
  return NOVA_OK;
}
static nova_status c_create(void *ctx, nova_buf cfg, nova_instance **out, char *err, size_t cap) {
  (void)ctx; (void)cfg; (void)err; (void)cap;
  *out = (nova_instance *)&g_instance;
  return NOVA_OK;
}
static void c_destroy(nova_instance *i) { (void)i; }

static int is(nova_buf b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

static nova_status c_call(nova_instance *i, const nova_call *c) {
  (void)i;
  if (is(c->tool, "ok")) {
    g_host->complete(g_host->host_ctx, c->call_id, NOVA_OK, c->input);
    return NOVA_OK;
  }
  if (is(c->tool, "segv")) {
    volatile int *p = NULL;
    *p = 1;
  }
  if (is(c->tool, "abort")) abort();
  if (is(c->tool, "exit")) exit(7);
  return NOVA_ERR_UNKNOWN_TOOL;
}

NOVA_EXPORT nova_status nova_driver_init(const nova_host_api *host, nova_driver *out) {
  if (out->abi_major != NOVA_ABI_MAJOR) {
    out->abi_major = NOVA_ABI_MAJOR;
    out->abi_minor = NOVA_ABI_MINOR;
    return NOVA_ERR_VERSION;
  }
  g_host = host;
  out->struct_size = (uint32_t)NOVA_DRIVER_SIZE_1_0;
  out->abi_minor = 0;
  out->driver_ctx = NULL;
  out->describe = c_describe;
  out->create = c_create;
  out->destroy = c_destroy;
  out->call = c_call;
  out->cancel = NULL;
  out->shutdown = NULL;
  return NOVA_OK;
}
