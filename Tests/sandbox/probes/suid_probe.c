/* Installed setuid-root by the battery; run inside the sandbox it must gain
 * nothing: prints its ids and effective capabilities. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char line[256], capeff[32] = "?";
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:\t", 8))
            sscanf(line + 8, "%31s", capeff);
    printf("euid=%d ruid=%d capeff=%s\n", (int)geteuid(), (int)getuid(), capeff);
    return 0;
}
