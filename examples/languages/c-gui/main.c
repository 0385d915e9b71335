/* c-gui: a VyomaOS app in C that draws. It fills its surface with a gradient, then draws
 * a square wherever the pointer is pressed, presenting only that square. It uses the
 * bindings `vyoma bindings c` generates from the WIT (vyoma/vyoma.h); its manifest grants
 * `display` and `input = ["pointer"]`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "vyoma.h"

enum { SQUARE = 8 };

static vyoma_app_display_borrow_surface_t surface;
static uint32_t width, height;
static uint8_t *pixels; /* XRGB8888, little-endian: blue, green, red, unused */

static void put(uint32_t x, uint32_t y, uint32_t rgb) {
    uint8_t *p = pixels + 4 * ((size_t)y * width + x);
    p[0] = rgb & 0xff;
    p[1] = (rgb >> 8) & 0xff;
    p[2] = (rgb >> 16) & 0xff;
    p[3] = 0;
}

/* Copies the pixels of `r` to the surface and presents it. */
static void show(vyoma_app_display_rect_t r) {
    size_t n = (size_t)r.width * r.height * 4;
    uint8_t *buf = malloc(n), *at = buf;
    for (uint32_t y = r.y; y < r.y + r.height; y++) {
        for (uint32_t x = r.x; x < r.x + r.width; x++, at += 4) {
            const uint8_t *p = pixels + 4 * ((size_t)y * width + x);
            at[0] = p[0], at[1] = p[1], at[2] = p[2], at[3] = 0;
        }
    }
    vyoma_list_u8_t list = {buf, n};
    vyoma_app_display_error_t err;
    if (!vyoma_app_display_method_surface_draw(surface, &r, &list, &err)) {
        fprintf(stderr, "c-gui: draw failed (error %d)\n", err.tag);
        vyoma_app_display_error_free(&err);
    }
    free(buf);
    vyoma_app_display_list_rect_t damage = {&r, 1};
    if (!vyoma_app_display_method_surface_present(surface, &damage, &err)) {
        fprintf(stderr, "c-gui: present failed (error %d)\n", err.tag);
        vyoma_app_display_error_free(&err);
    }
}

int main(int argc, char **argv) {
    (void)argc, (void)argv; /* see docs/languages.md: C apps take `main(argc, argv)` */
    vyoma_app_display_create_desc_t desc = {0};
    vyoma_string_set(&desc.title, "c-gui");
    vyoma_app_display_own_surface_t own;
    vyoma_app_display_error_t err;
    if (!vyoma_app_display_create_surface(&desc, &own, &err)) {
        fprintf(stderr, "c-gui: no surface (error %d): is `display` granted?\n", err.tag);
        return 1;
    }
    surface = vyoma_app_display_borrow_surface(own);
    width = vyoma_app_display_method_surface_width(surface);
    height = vyoma_app_display_method_surface_height(surface);
    pixels = malloc((size_t)width * height * 4);
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++)
            put(x, y, (x * 255 / width) << 8 | (y * 255 / height) | 0x200000);
    show((vyoma_app_display_rect_t){0, 0, width, height});
    printf("c-gui: drawing on a %ux%u surface\n", width, height);
    fflush(stdout);
    for (;;) {
        vyoma_app_input_own_pollable_t ready = vyoma_app_input_subscribe();
        wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
        wasi_io_poll_pollable_drop_own(ready);
        vyoma_app_input_event_t e;
        while (vyoma_app_input_get_event(&e)) {
            if (e.tag == VYOMA_APP_INPUT_EVENT_POINTER && e.val.pointer.phase == VYOMA_APP_INPUT_PHASE_DOWN) {
                int32_t x0 = e.val.pointer.x - SQUARE / 2, y0 = e.val.pointer.y - SQUARE / 2;
                if (x0 >= 0 && y0 >= 0 && x0 + SQUARE <= (int32_t)width && y0 + SQUARE <= (int32_t)height) {
                    for (int32_t y = y0; y < y0 + SQUARE; y++)
                        for (int32_t x = x0; x < x0 + SQUARE; x++) put(x, y, 0xffffff);
                    show((vyoma_app_display_rect_t){x0, y0, SQUARE, SQUARE});
                    printf("c-gui: square at %d,%d\n", e.val.pointer.x, e.val.pointer.y);
                    fflush(stdout);
                }
            }
            vyoma_app_input_event_free(&e);
        }
    }
}
