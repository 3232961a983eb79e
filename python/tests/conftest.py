"""Shared by the pytest suite: the oracle, the seeded random inputs and the GPU check.

The oracle is the post's kernel, transcribed to Python integers (no overflow, no numpy, no
divgpu code), and a factoring version of the same count for values too large to loop over.
"""

import os
import random

import numpy as np
import pytest

import divgpu

SKIP_GPU = os.environ.get("DIVGPU_SKIP_GPU_TESTS") == "1"
EXPECT_BACKEND = os.environ.get("DIVGPU_EXPECT_BACKEND")
INT_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]


def post_kernel(x: int) -> int:
    """The post's inner loop for one element, as written (1 for every x <= 1)."""
    ret = 1
    if x > 1:
        ret += 1
    j = 2
    while j * j <= x:
        if x % j == 0:
            ret += 1
            if j * j < x:
                ret += 1
        j += 1
    return ret


def divisor_count(x: int) -> int:
    """The same count by factoring: d(x) = prod(e + 1); 1 for x <= 1."""
    if x <= 1:
        return 1
    count = 1
    p = 2
    while p * p <= x:
        e = 0
        while x % p == 0:
            x //= p
            e += 1
        count *= e + 1
        p += 1 if p == 2 else 2
    if x > 1:
        count *= 2
    return count


# Values too large to factor here by trial division, with their divisor counts from outside:
# 2^61 - 1 is a Mersenne prime (M61), and 4294967291 and 4294967279 are the two largest primes
# below 2^32 (OEIS A014234 lists 4294967291), so their product has 4 divisors.
KNOWN = {2**61 - 1: 2, 4294967291 * 4294967279: 4}


def oracle(values, thresholds):
    """For each threshold, the sum of the count over the elements x <= t."""
    counts = dict(KNOWN)
    for x in values:
        x = int(x)
        if x not in counts:
            counts[x] = post_kernel(x) if abs(x) < 1 << 20 else divisor_count(x)
    return [sum(counts[int(x)] for x in values if int(x) <= t) for t in thresholds]


def test_oracles_agree_with_each_other_and_with_oeis():
    # A006218: sum of d(k) for k = 1..N
    assert sum(post_kernel(k) for k in range(1, 101)) == 482
    assert sum(divisor_count(k) for k in range(1, 1001)) == 7069
    rng = random.Random(5)
    for _ in range(300):
        x = rng.randrange(-10, 1 << 16)
        assert post_kernel(x) == divisor_count(x), x
    # the post's example: [4,7,6,8,11,9] at n = 7 gives 3 + 2 + 4
    assert oracle([4, 7, 6, 8, 11, 9], [7]) == [9]
    assert divisor_count(4294967291) == 2 and divisor_count(4294967279) == 2


def random_values(rng, dtype, n):
    """Values of `dtype`: mostly small (where the work is), some at the type's edges."""
    info = np.iinfo(dtype)
    small_lo = max(int(info.min), -50)
    small_hi = min(int(info.max), 20_000)
    values = [rng.randint(small_lo, small_hi) for _ in range(n)]
    edges = [int(info.min), int(info.max), 0, 1, 2]
    if info.min < 0:
        edges.append(-1)
    if info.bits >= 32:
        # wide values the GPU handles with its 64-bit path; primes and composites
        edges += [4294967291, 4294967295, 2**32 + 15]
        if info.bits == 64:
            edges += [2**61 - 1, 4294967291 * 4294967279, 2**40 * 3]
    values += [v for v in edges if info.min <= v <= info.max]
    rng.shuffle(values)
    return values


def random_thresholds(rng, dtype, count):
    info = np.iinfo(dtype)
    ts = [rng.randint(-60, 21_000) for _ in range(count)]
    ts += [int(info.max), int(info.min), -(2**63), 2**64 - 1]
    rng.shuffle(ts)
    return ts


@pytest.fixture(scope="session")
def gpu_backend():
    """Fails (does not skip) when there is no adapter, unless DIVGPU_SKIP_GPU_TESTS=1."""
    if SKIP_GPU:
        pytest.skip("DIVGPU_SKIP_GPU_TESTS=1")
    index = divgpu.Index([1, 2, 3], backend="gpu")
    adapter = index.adapter
    assert adapter is not None
    if EXPECT_BACKEND:
        assert adapter["backend"] == EXPECT_BACKEND, adapter
    return "gpu"


@pytest.fixture(params=["cpu", "gpu"])
def backend(request):
    """Every test that takes it runs on the CPU and on the GPU."""
    if request.param == "gpu":
        return request.getfixturevalue("gpu_backend")
    return "cpu"
