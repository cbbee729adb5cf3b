/* A static probe for the platform tests: `probe` prints the machine
 * uname(2) reports (aarch64 under qemu), `probe write FILE` writes it to
 * FILE, `probe cat FILE` prints FILE. Needs no libc in the image. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

int main(int argc, char **argv) {
    struct utsname u;
    if (uname(&u) != 0)
        return 3;
    if (argc == 3 && strcmp(argv[1], "cat") == 0) {
        FILE *in = fopen(argv[2], "r");
        int c;
        if (!in)
            return 2;
        while ((c = fgetc(in)) != EOF)
            putchar(c);
        return 0;
    }
    FILE *out = stdout;
    if (argc == 3 && strcmp(argv[1], "write") == 0)
        out = fopen(argv[2], "w");
    if (!out)
        return 2;
    fprintf(out, "%s\n", u.machine);
    return 0;
}
