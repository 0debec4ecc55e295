/* replay_main.c: runs a libFuzzer target over saved inputs, so ctest replays each corpus without
 * libFuzzer. Arguments are files or directories (read one level deep, in name order). Fails when
 * no input was replayed, so an empty or missing corpus is noticed. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file; NULL on failure (reported). */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf == NULL || ferror(f)) {
        fprintf(stderr, "%s: read failed\n", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int replay_file(const char *path, long *count)
{
    size_t len;
    uint8_t *data = slurp(path, &len);
    if (data == NULL)
        return -1;
    /* Exactly `len` bytes, like libFuzzer: a copy of the right size lets ASan see overreads. */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    if (len)
        memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    (*count)++;
    return 0;
}

int main(int argc, char **argv)
{
    long count = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i], &count) < 0)
                failed = 1;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, alphasort);
        if (n < 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        for (int k = 0; k < n; k++) {
            char path[4096];
            int len = snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
            if (len > 0 && (size_t)len < sizeof(path) && stat(path, &st) == 0 &&
                S_ISREG(st.st_mode) && replay_file(path, &count) < 0)
                failed = 1;
            free(names[k]);
        }
        free(names);
    }
    printf("replayed %ld inputs\n", count);
    return count == 0 || failed ? 1 : 0;
}
