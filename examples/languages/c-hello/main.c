/* c-hello: a VyomaOS app in C, a plain WASI program: no VyomaOS headers. It prints its
 * arguments and the variables it was given, then ends; `log c-hello` in the console
 * shows what it printed. */
#include <stdio.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("hello from c-hello (C), %d args:", argc);
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    for (char **e = environ; *e; e++) printf("%s\n", *e);
    return 0;
}
