/* c-ipc: a VyomaOS app in C that answers requests over IPC. `@c-ipc: hi` in the console
 * asks it; when its first argument names another app (`args = ["echo"]` in app.toml, and
 * that app in `[capabilities.ipc] send`), it asks that app first and includes the answer.
 * Plain messages are printed (`log c-ipc`). vyoma/ is written by `vyoma bindings c`. */
#include <stdio.h>

#include "vyoma_ipc.h"

int main(int argc, char **argv) {
    const char *peer = argc > 1 ? argv[1] : NULL;
    printf("c-ipc answers requests\n");
    fflush(stdout);
    for (;;) {
        vyoma_message m;
        if (!vyoma_recv(&m, -1)) continue;
        int len = (int)m.body.len;
        const char *text = (const char *)m.body.ptr;
        if (!vyoma_is_request(&m)) {
            printf("message from %.*s: %.*s\n", (int)m.sender.len, (char *)m.sender.ptr, len, text);
            fflush(stdout);
            vyoma_message_free(&m);
            continue;
        }
        char answer[4096], why[256];
        int n = snprintf(answer, sizeof answer, "c-ipc heard \"%.*s\"", len, text);
        if (peer) {
            vyoma_bytes said;
            vyoma_error err;
            if (vyoma_request(peer, text, m.body.len, 1000, &said, &err)) {
                n += snprintf(answer + n, sizeof answer - n, "; %s said \"%.*s\"", peer, (int)said.len, (char *)said.ptr);
                vyoma_bytes_free(&said);
            } else {
                n += snprintf(answer + n, sizeof answer - n, "; %s did not answer: %s", peer,
                              vyoma_error_text(&err, why, sizeof why));
            }
        }
        if (n > (int)sizeof answer - 1) n = sizeof answer - 1;
        vyoma_error err;
        if (!vyoma_reply(&m, answer, (size_t)n, &err)) {
            fprintf(stderr, "cannot answer: %s\n", vyoma_error_text(&err, why, sizeof why));
        }
        vyoma_message_free(&m);
    }
}
