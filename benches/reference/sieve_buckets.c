/* The tuned C baseline of `--algorithm fast` on the post's workload: a divisor-count table by
 * linear sieve up to the largest threshold, each element bucketed by threshold (branch-free),
 * one prefix sum. Single-threaded. Reads an int64 .npy (little-endian, as `divgpu gen` writes)
 * through a memory map and prints one result per threshold, in the post's order.
 *
 *   cc -O3 -march=native -o sieve_buckets benches/reference/sieve_buckets.c
 *   ./sieve_buckets array.npy
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const int64_t POST[13] = {100000, 400000, 100000, 200000, 400000, 500000, 100000,
                                 100000, 200000, 300000, 400000, 100000, 200000};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s array.npy\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    const uint8_t *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED || memcmp(file, "\x93NUMPY", 6) != 0 || file[6] != 1) {
        fprintf(stderr, "%s: not a version 1 .npy file\n", argv[1]);
        return 1;
    }
    size_t header = 10 + (size_t)(file[8] | file[9] << 8);
    size_t n = (st.st_size - header) / 8;
    const int64_t *x = (const int64_t *)(file + header);

    /* distinct thresholds ascending */
    int64_t t[13];
    int q = 0;
    for (int i = 0; i < 13; i++) {
        int j = q;
        while (j > 0 && t[j - 1] > POST[i]) j--;
        if (j > 0 && t[j - 1] == POST[i]) continue;
        memmove(t + j + 1, t + j, (q - j) * sizeof t[0]);
        t[j] = POST[i];
        q++;
    }
    int64_t limit = t[q - 1];

    /* d(v) for v <= limit by a linear sieve: d, the exponent of the smallest prime */
    uint16_t *d = malloc((limit + 1) * sizeof *d);
    uint8_t *e = malloc(limit + 1);
    uint32_t *primes = malloc((limit / 2 + 16) * sizeof *primes);
    size_t np = 0;
    memset(d, 0, (limit + 1) * sizeof *d);
    d[0] = d[1] = 1;
    for (int64_t v = 2; v <= limit; v++) {
        if (d[v] == 0) {
            d[v] = 2;
            e[v] = 1;
            primes[np++] = (uint32_t)v;
        }
        for (size_t k = 0; k < np; k++) {
            int64_t p = primes[k], m = p * v;
            if (m > limit) break;
            if (v % p == 0) {
                e[m] = e[v] + 1;
                d[m] = d[v] / (e[v] + 1) * (e[v] + 2);
                break;
            }
            e[m] = 1;
            d[m] = d[v] * 2;
        }
    }

    /* bucket sums: the smallest distinct threshold >= x, branch-free over q <= 16 entries */
    uint64_t sums[16] = {0};
    int64_t padded[16];
    for (int i = 0; i < 16; i++) padded[i] = i < q ? t[i] : INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t v = x[i];
        if (v > limit) continue;
        int b = 0;
        for (int step = 8; step > 0; step >>= 1) b += (padded[b + step - 1] < v) ? step : 0;
        sums[b] += v <= 1 ? 1 : d[v];
    }
    for (int i = 1; i < q; i++) sums[i] += sums[i - 1];
    for (int i = 0; i < 13; i++) {
        int j = 0;
        while (t[j] != POST[i]) j++;
        printf("%lld %llu\n", (long long)POST[i], (unsigned long long)sums[j]);
    }
    return 0;
}
