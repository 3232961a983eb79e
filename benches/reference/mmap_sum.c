/* The floor for the CPU on a big .npy file: map it, and sum its elements on T threads, as the
 * count must at least read them. Issue 13's ratios are divgpu's whole-process time over this
 * program's, measured side by side with hyperfine.
 *
 *     cc -O2 -pthread -o mmap_sum benches/reference/mmap_sum.c
 *     ./mmap_sum FILE.npy [THREADS]
 *
 * The element type comes from the .npy header ('<i8', '<i4', '<i2', '<i1' and the unsigned
 * ones); the sum is printed so that no compiler can drop the reads.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct part {
    const unsigned char *data;
    size_t count;
    int width, is_signed;
    int64_t sum;
};

#define SUM(type)                                                     \
    do {                                                              \
        const type *v = (const type *)p->data;                        \
        for (size_t i = 0; i < p->count; i++) sum += (int64_t)v[i];   \
    } while (0)

static void *sum_part(void *arg) {
    struct part *p = arg;
    int64_t sum = 0;
    switch (p->width * (p->is_signed ? 1 : -1)) {
        case 8: SUM(int64_t); break;
        case 4: SUM(int32_t); break;
        case 2: SUM(int16_t); break;
        case 1: SUM(int8_t); break;
        case -8: SUM(uint64_t); break;
        case -4: SUM(uint32_t); break;
        case -2: SUM(uint16_t); break;
        case -1: SUM(uint8_t); break;
    }
    p->sum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mmap_sum FILE.npy [THREADS]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (threads < 1 || threads > 256) threads = 2;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    const unsigned char *map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    /* .npy: magic (6), version (2), header length (2 or 4, little-endian), header */
    if (st.st_size < 10 || memcmp(map, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "%s: not a .npy file\n", argv[1]);
        return 1;
    }
    size_t header = map[6] == 1 ? 10 + (map[8] | map[9] << 8)
                                : 12 + (map[8] | map[9] << 8 | map[10] << 16 | (size_t)map[11] << 24);
    const char *descr = memmem(map, header, "'descr': '", 10);
    if (!descr || (descr[10] != '<' && descr[10] != '|')) {
        fprintf(stderr, "%s: a little-endian integer dtype is needed\n", argv[1]);
        return 1;
    }
    int is_signed = descr[11] == 'i';
    int width = descr[12] - '0';
    if ((descr[11] != 'i' && descr[11] != 'u') || (width != 1 && width != 2 && width != 4 && width != 8)) {
        fprintf(stderr, "%s: an integer dtype is needed\n", argv[1]);
        return 1;
    }
    size_t count = (st.st_size - header) / width;
    struct part parts[256];
    pthread_t ids[256];
    for (int t = 0; t < threads; t++) {
        size_t lo = count * t / threads, hi = count * (t + 1) / threads;
        parts[t] = (struct part){map + header + lo * width, hi - lo, width, is_signed, 0};
        pthread_create(&ids[t], NULL, sum_part, &parts[t]);
    }
    int64_t sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        sum += parts[t].sum;
    }
    printf("%lld\n", (long long)sum);
    return 0;
}
