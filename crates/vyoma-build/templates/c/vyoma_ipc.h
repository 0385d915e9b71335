/* Plain-C helpers over the VyomaOS IPC bindings that wit-bindgen generates (vyoma.h):
 * C strings and byte buffers in, readable error text out. Written by `vyoma bindings c`;
 * regenerate rather than edit. See docs/ipc.md. */
#ifndef VYOMA_IPC_H
#define VYOMA_IPC_H

#include <stdio.h>
#include <string.h>

#include "vyoma.h"

typedef vyoma_app_ipc_message_t vyoma_message;
typedef vyoma_app_ipc_error_t vyoma_error;
typedef vyoma_list_u8_t vyoma_bytes;

static inline vyoma_string_t vyoma__str(const char *s) {
    vyoma_string_t r = {(uint8_t *)s, strlen(s)};
    return r;
}

static inline vyoma_bytes vyoma__bytes(const void *p, size_t len) {
    vyoma_bytes r = {(uint8_t *)p, len};
    return r;
}

/* Waits for the next message, up to timeout_ms (negative: without limit). False when the
 * time passed without one. Free a received message with vyoma_message_free. */
static inline bool vyoma_recv(vyoma_message *m, long timeout_ms) {
    uint32_t t = (uint32_t)timeout_ms;
    return vyoma_app_ipc_recv(timeout_ms < 0 ? NULL : &t, m);
}

/* Whether the message waits for an answer (a request, or a console message). */
static inline bool vyoma_is_request(const vyoma_message *m) { return m->reply_token.is_some; }

static inline void vyoma_message_free(vyoma_message *m) { vyoma_app_ipc_message_free(m); }

/* Queues len bytes for app `to`; false (and *err set) if it cannot. */
static inline bool vyoma_send(const char *to, const void *body, size_t len, vyoma_error *err) {
    vyoma_string_t t = vyoma__str(to);
    vyoma_bytes b = vyoma__bytes(body, len);
    return vyoma_app_ipc_send(&t, &b, err);
}

/* Asks app `to` and waits up to timeout_ms for its answer, returned in *answer (free it
 * with vyoma_bytes_free); false (and *err set) if no answer came. */
static inline bool vyoma_request(const char *to, const void *body, size_t len, uint32_t timeout_ms,
                                 vyoma_bytes *answer, vyoma_error *err) {
    vyoma_string_t t = vyoma__str(to);
    vyoma_bytes b = vyoma__bytes(body, len);
    return vyoma_app_ipc_request(&t, &b, timeout_ms, answer, err);
}

static inline void vyoma_bytes_free(vyoma_bytes *b) { vyoma_list_u8_free(b); }

/* Answers request m with len bytes; false (and *err set) if the answer was not taken. */
static inline bool vyoma_reply(const vyoma_message *m, const void *body, size_t len, vyoma_error *err) {
    vyoma_bytes b = vyoma__bytes(body, len);
    if (!m->reply_token.is_some) {
        err->tag = VYOMA_APP_IPC_ERROR_NOT_PERMITTED;
        vyoma_string_dup(&err->val.not_permitted, "the message is not a request: send to its sender instead");
        return false;
    }
    return vyoma_app_ipc_reply(m->reply_token.val, &b, err);
}

/* Writes what went wrong as text into buf (n bytes), and frees *err. */
static inline const char *vyoma_error_text(vyoma_error *err, char *buf, size_t n) {
    switch (err->tag) {
    case VYOMA_APP_IPC_ERROR_UNKNOWN_APP:
        snprintf(buf, n, "no app named %.*s", (int)err->val.unknown_app.len, (char *)err->val.unknown_app.ptr);
        break;
    case VYOMA_APP_IPC_ERROR_NOT_PERMITTED:
        snprintf(buf, n, "not permitted: %.*s", (int)err->val.not_permitted.len, (char *)err->val.not_permitted.ptr);
        break;
    case VYOMA_APP_IPC_ERROR_FULL: snprintf(buf, n, "the inbox is full"); break;
    case VYOMA_APP_IPC_ERROR_TIMEOUT: snprintf(buf, n, "timed out"); break;
    case VYOMA_APP_IPC_ERROR_TOO_LARGE:
        snprintf(buf, n, "too large: the receiver takes at most %u bytes", (unsigned)err->val.too_large);
        break;
    default: snprintf(buf, n, "unknown error %u", (unsigned)err->tag); break;
    }
    vyoma_app_ipc_error_free(err);
    return buf;
}

#endif
