/*
 * c-echo — a third-party nova-host driver in plain C, built against nova_driver.h only:
 *
 *     cc -std=c11 -shared -fPIC -fvisibility=hidden -I../../../Sources/DriverABI/include \
 *        -o libnova_echo.so echo.c -lpthread
 *
 * Tools:
 *   echo.echo   returns its input unchanged (answers synchronously); reports one usage token
 *               per 4 input bytes so budgets have something to charge.
 *   echo.fail   always fails with NOVA_ERR_TOOL and an error object.
 *   echo.version returns {"version": "<ECHO_VERSION>"} (hot-reload tests build several versions).
 *   echo.sleep  {"ms": N} answers later from its own thread; honours the deadline and cancel.
 */
#define _POSIX_C_SOURCE 200809L
#include "nova_driver.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef ECHO_VERSION
#define ECHO_VERSION "1.0.0"
#endif

static const char MANIFEST[] =
    "{\"name\":\"echo\",\"version\":\"" ECHO_VERSION "\","
    "\"description\":\"Example driver in plain C: echo, fail and sleep.\","
    "\"concurrency\":\"thread_safe\","
    "\"permissions\":{\"network\":false,\"filesystem\":false,\"process\":false},"
    "\"tools\":["
    "{\"name\":\"echo\",\"description\":\"Return the input unchanged.\","
    "\"inputSchema\":{\"type\":\"object\"},"
    "\"examples\":[{\"input\":{\"hello\":\"nova\"}}],"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,"
    "\"idempotentHint\":true,\"openWorldHint\":false}},"
    "{\"name\":\"fail\",\"description\":\"Always fail with a tool error.\","
    "\"inputSchema\":{\"type\":\"object\"},"
    "\"examples\":[{\"input\":{},\"error\":\"echo_fail\"}],"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,"
    "\"idempotentHint\":true,\"openWorldHint\":false}},"
    "{\"name\":\"version\",\"description\":\"Return the driver's version.\","
    "\"inputSchema\":{\"type\":\"object\"},"
    "\"outputSchema\":{\"type\":\"object\",\"properties\":{\"version\":{\"type\":\"string\"}}},"
    "\"examples\":[{\"input\":{}}],"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,"
    "\"idempotentHint\":true,\"openWorldHint\":false}},"
    "{\"name\":\"sleep\",\"description\":\"Sleep for ms milliseconds, then return "
    "{\\\"slept_ms\\\": ms}. Stops early on cancel or deadline.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"ms\":{\"type\":\"integer\","
    "\"minimum\":0,\"maximum\":600000}},\"required\":[\"ms\"]},"
    "\"outputSchema\":{\"type\":\"object\",\"properties\":{\"slept_ms\":{\"type\":\"integer\"}}},"
    "\"examples\":[{\"input\":{\"ms\":200}}],"
    "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,"
    "\"idempotentHint\":true,\"openWorldHint\":false}}"
    "]}";

/* Driver-wide state: the host's services. One per load (generation). */
typedef struct echo_driver {
  const nova_host_api *host;
} echo_driver;

/* An instance holds nothing but a pointer to the driver; it exists to show the lifecycle. */
struct nova_instance {
  echo_driver *driver;
  atomic_int in_flight;
};

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static nova_buf text(const char *s) {
  nova_buf b = {(const uint8_t *)s, strlen(s)};
  return b;
}

static int buf_equals(nova_buf b, const char *s) {
  size_t n = strlen(s);
  return b.len == n && memcmp(b.ptr, s, n) == 0;
}

/* Finds `"key"` in a flat JSON object and parses the integer after the colon. Good enough for
 * an example whose input the host has already validated against the tool's inputSchema. */
static int find_int(nova_buf json, const char *key, long long *out) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\"", key);
  size_t plen = strlen(pattern);
  for (size_t i = 0; i + plen <= json.len; i++) {
    if (memcmp(json.ptr + i, pattern, plen) != 0) continue;
    size_t j = i + plen;
    while (j < json.len && (json.ptr[j] == ' ' || json.ptr[j] == ':' || json.ptr[j] == '\t' ||
                            json.ptr[j] == '\n' || json.ptr[j] == '\r'))
      j++;
    char digits[32];
    size_t k = 0;
    while (j < json.len && k + 1 < sizeof digits &&
           (json.ptr[j] == '-' || (json.ptr[j] >= '0' && json.ptr[j] <= '9')))
      digits[k++] = (char)json.ptr[j++];
    if (k == 0) return 0;
    digits[k] = 0;
    *out = strtoll(digits, NULL, 10);
    return 1;
  }
  return 0;
}

/* ---- echo.sleep runs on its own thread ---- */
typedef struct sleep_job {
  echo_driver *driver;
  nova_instance *instance;
  uint64_t call_id;
  long long ms;
  int64_t deadline_ns;
} sleep_job;

static void *sleep_thread(void *arg) {
  sleep_job *job = arg;
  const nova_host_api *host = job->driver->host;
  int64_t end = monotonic_ns() + job->ms * 1000000LL;
  nova_status status = NOVA_OK;
  char out[160];
  snprintf(out, sizeof out, "{\"slept_ms\":%lld}", job->ms);
  for (;;) {
    int64_t now = monotonic_ns();
    if (now >= end) break;
    if (host->is_cancelled(host->host_ctx, job->call_id)) {
      /* is_cancelled is also 1 once the deadline passed: tell the two apart, with a fresh
       * clock reading (the thread may have been descheduled since `now`). */
      if (job->deadline_ns != 0 && monotonic_ns() >= job->deadline_ns) {
        status = NOVA_ERR_DEADLINE;
        snprintf(out, sizeof out,
                 "{\"code\":\"deadline\",\"message\":\"echo.sleep: deadline passed\"}");
      } else {
        status = NOVA_ERR_CANCELLED;
        snprintf(out, sizeof out,
                 "{\"code\":\"cancelled\",\"message\":\"echo.sleep: cancelled\"}");
      }
      break;
    }
    if (job->deadline_ns != 0 && now >= job->deadline_ns) {
      status = NOVA_ERR_DEADLINE;
      snprintf(out, sizeof out,
               "{\"code\":\"deadline\",\"message\":\"echo.sleep: deadline passed\"}");
      break;
    }
    int64_t left = end - now;
    if (job->deadline_ns != 0 && job->deadline_ns - now < left) left = job->deadline_ns - now;
    if (left > 1000000) left = 1000000; /* poll cancellation every millisecond */
    struct timespec ts = {0, (long)left};
    nanosleep(&ts, NULL);
  }
  atomic_fetch_sub(&job->instance->in_flight, 1);
  host->complete(host->host_ctx, job->call_id, status, text(out));
  free(job);
  return NULL;
}

/* ---- the vtable ---- */
static nova_status echo_describe(void *ctx, nova_buf *manifest_out) {
  (void)ctx;
  *manifest_out = text(MANIFEST);
  return NOVA_OK;
}

static nova_status echo_create(void *ctx, nova_buf config, nova_instance **instance_out,
                               char *error, size_t error_cap) {
  (void)config;
  nova_instance *inst = calloc(1, sizeof *inst);
  if (!inst) {
    snprintf(error, error_cap, "echo: out of memory");
    return NOVA_ERR_INTERNAL;
  }
  inst->driver = ctx;
  atomic_init(&inst->in_flight, 0);
  *instance_out = inst;
  return NOVA_OK;
}

static void echo_destroy(nova_instance *instance) { free(instance); }

static nova_status echo_call(nova_instance *instance, const nova_call *call) {
  const nova_host_api *host = instance->driver->host;
  if (buf_equals(call->tool, "echo")) {
    nova_usage usage = {sizeof(nova_usage), NOVA_ABI_MAJOR, NOVA_ABI_MINOR,
                        (call->input.len + 3) / 4, 0};
    host->report_usage(host->host_ctx, call->call_id, &usage);
    host->complete(host->host_ctx, call->call_id, NOVA_OK, call->input);
    return NOVA_OK;
  }
  if (buf_equals(call->tool, "version")) {
    host->complete(host->host_ctx, call->call_id, NOVA_OK, text("{\"version\":\"" ECHO_VERSION "\"}"));
    return NOVA_OK;
  }
  if (buf_equals(call->tool, "fail")) {
    host->complete(host->host_ctx, call->call_id, NOVA_ERR_TOOL,
                   text("{\"code\":\"echo_fail\",\"message\":\"echo.fail always fails\"}"));
    return NOVA_OK;
  }
  if (buf_equals(call->tool, "sleep")) {
    long long ms = 0;
    if (!find_int(call->input, "ms", &ms) || ms < 0) return NOVA_ERR_INVALID_ARGUMENT;
    sleep_job *job = malloc(sizeof *job);
    if (!job) return NOVA_ERR_INTERNAL;
    *job = (sleep_job){instance->driver, instance, call->call_id, ms, call->deadline_ns};
    atomic_fetch_add(&instance->in_flight, 1);
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &attr, sleep_thread, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      atomic_fetch_sub(&instance->in_flight, 1);
      free(job);
      return NOVA_ERR_INTERNAL;
    }
    return NOVA_PENDING;
  }
  return NOVA_ERR_UNKNOWN_TOOL;
}

static void echo_shutdown(void *ctx) { free(ctx); }

NOVA_EXPORT nova_status nova_driver_init(const nova_host_api *host, nova_driver *out) {
  if (out->abi_major != NOVA_ABI_MAJOR) {
    out->abi_major = NOVA_ABI_MAJOR;
    out->abi_minor = NOVA_ABI_MINOR;
    return NOVA_ERR_VERSION;
  }
  /* Every 1.x host has the 1.0 table; we fill exactly that much. */
  if (out->struct_size < NOVA_DRIVER_SIZE_1_0) return NOVA_ERR_VERSION;
  echo_driver *driver = calloc(1, sizeof *driver);
  if (!driver) return NOVA_ERR_INTERNAL;
  driver->host = host;
  out->struct_size = (uint32_t)NOVA_DRIVER_SIZE_1_0;
  out->abi_major = NOVA_ABI_MAJOR;
  out->abi_minor = 0;
  out->driver_ctx = driver;
  out->describe = echo_describe;
  out->create = echo_create;
  out->destroy = echo_destroy;
  out->call = echo_call;
  out->cancel = NULL; /* we poll is_cancelled instead */
  out->shutdown = echo_shutdown;
  return NOVA_OK;
}
