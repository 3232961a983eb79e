/* The floor for the CPU on a big .npy file: map it, and sum its elements on T threads, as the
 * count must at least read them. Issue 13's ratios are divgpu's whole-process time over this
 * program's, measured side by side with hyperfine.
 *
 *     cc -O2 -pthread -o mmap_sum benches/reference/mmap_sum.c
 *     ./mmap_sum FILE.npy [THREADS] [TOP [BITS]]
 *
 * The element type comes from the .npy header ('<i8', '<i4', '<i2', '<i1' and the unsigned
 * ones); the sum is printed so that no compiler can drop the reads.
 *
 * With TOP, each thread instead counts its elements per value of 0..TOP in a histogram of its
 * own (one increment per element, no branch: those below 0 and above TOP in slots of their own),
 * and the histograms are added: the least divgpu's histogram path does with each element, so
 * its time is the ceiling of any such path over the floor's. It prints the sum of value times
 * count over 0..TOP.
 *
 * BITS (32, the default, 16 or 8) is the width of those counters: narrower ones are a smaller
 * histogram (TOP = 500,000 is 2 MB at 32 bits, 0.5 MB at 8, within a 1 MB L2), and each one
 * that wraps to 0 carries into a 32-bit counter of its own, so the counts stay exact.
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
    int64_t top;     /* the histogram's last value, or -1 for a sum */
    int bits;        /* the counters' width */
    uint32_t *hist;  /* slots for below 0, then 0..top, then above top */
};

#define SUM(type)                                                     \
    do {                                                              \
        const type *v = (const type *)p->data;                        \
        for (size_t i = 0; i < p->count; i++) sum += (int64_t)v[i];   \
    } while (0)

/* `pass(type)` for the part's element type */
#define FOR_EACH_TYPE(pass)                         \
    switch (p->width * (p->is_signed ? 1 : -1)) {   \
        case 8: pass(int64_t); break;               \
        case 4: pass(int32_t); break;               \
        case 2: pass(int16_t); break;               \
        case 1: pass(int8_t); break;                \
        case -8: pass(uint64_t); break;             \
        case -4: pass(uint32_t); break;             \
        case -2: pass(uint16_t); break;             \
        case -1: pass(uint8_t); break;              \
    }

/* `count(slot)` for each element's slot */
#define HIST(type)                                                        \
    do {                                                                  \
        const type *v = (const type *)p->data;                            \
        for (size_t i = 0; i < p->count; i++) {                           \
            /* only a uint64 can pass INT64_MAX: saturated to it, above TOP */ \
            int64_t x = (type)-1 > 0 && sizeof(type) == 8 && v[i] > INT64_MAX \
                            ? INT64_MAX : (int64_t)v[i];                  \
            x = x < -1 ? -1 : x > p->top + 1 ? p->top + 1 : x;            \
            count(x + 1);                                                 \
        }                                                                 \
    } while (0)

/* one narrow counter per slot, carrying into `h` when it wraps */
#define NARROW(ctype)                                                     \
    do {                                                                  \
        ctype *n = calloc(p->top + 3, sizeof *n);                         \
        FOR_EACH_TYPE(HIST);                                              \
        for (int64_t s = 0; s < p->top + 3; s++)                          \
            h[s] = h[s] * ((uint32_t)(ctype)-1 + 1) + n[s];               \
        free(n);                                                          \
    } while (0)

static void *hist_part(void *arg) {
    struct part *p = arg;
    uint32_t *h = p->hist = calloc(p->top + 3, sizeof *h);
    if (p->bits < 32) {
#define count(s) (++n[s] == 0 ? (void)h[s]++ : (void)0)
        if (p->bits == 8)
            NARROW(uint8_t);
        else
            NARROW(uint16_t);
#undef count
    } else {
#define count(s) (void)h[s]++
        FOR_EACH_TYPE(HIST);
#undef count
    }
    return NULL;
}

static void *sum_part(void *arg) {
    struct part *p = arg;
    int64_t sum = 0;
    FOR_EACH_TYPE(SUM);
    p->sum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mmap_sum FILE.npy [THREADS] [TOP [BITS]]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (threads < 1 || threads > 256) threads = 2;
    int64_t top = argc > 3 ? atoll(argv[3]) : -1;
    if (argc > 3 && (top < 0 || top > (1 << 24))) {
        fprintf(stderr, "TOP: 0 to 2^24\n");
        return 2;
    }
    int bits = argc > 4 ? atoi(argv[4]) : 32;
    if (bits != 32 && bits != 16 && bits != 8) {
        fprintf(stderr, "BITS: 32, 16 or 8\n");
        return 2;
    }
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
        parts[t] = (struct part){map + header + lo * width, hi - lo, width, is_signed, 0, top, bits, NULL};
        pthread_create(&ids[t], NULL, top < 0 ? sum_part : hist_part, &parts[t]);
    }
    int64_t sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        sum += parts[t].sum;
    }
    if (top >= 0) {
        uint32_t *h = parts[0].hist;
        for (int t = 1; t < threads; t++)
            for (int64_t v = 0; v < top + 3; v++) h[v] += parts[t].hist[v];
        for (int64_t v = 0; v <= top; v++) sum += v * (int64_t)h[v + 1];
    }
    printf("%lld\n", (long long)sum);
    return 0;
}
