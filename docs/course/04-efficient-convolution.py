# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. How to make convolution efficient
#
# **Question.** How can a convolution be computed faster than the textbook loop?
#
# **Answer.** The textbook loop does n x n x k x k multiply-adds for an n x n image and a
# k x k kernel, one at a time. Four ways to do better, each a convcore backend with its own
# page in `docs/`:
#
# - **do the same sums faster**: the outputs are independent, so split them over the cores
#   (OpenMP threads) and compute several at once in vector registers (`openmp`);
# - **do fewer sums when the kernel allows**: a *separable* kernel (rank 1, the outer product
#   of a column and a row, like a Gaussian blur) is two 1-D passes, 2k multiply-adds per
#   output instead of k^2 (`separable`). A kernel of rank r costs r x 2k, so this pays only
#   for rank well below k / 2; a random kernel has full rank and gains nothing;
# - **change the algorithm**: a convolution is a product of Fourier transforms, about
#   n^2 log n work *whatever the kernel size*, so it wins for large kernels (`fft`);
# - **turn it into a matrix product**: unfold the windows into a matrix and call BLAS
#   (`im2col`), which wins where the problem really is a matrix product (many channels and
#   filters, question 7's layers), less so for one image and one kernel.
#
# Which is fastest depends on the kernel size *and on the machine*: the crossovers below
# are measured when this page runs, with the benchmark suite's timing
# (`convcore.benchmarks.rounds`: rows interleaved, idle gaps, warm-up, every result checked
# against a float64 reference). Times are reported, never checked; the facts are.

# %%
import numpy as np
import scipy.signal

import convcore
import _course
from convcore.cli.bench.plot import crossovers
from convcore.backends.separable import decompose
from convcore.benchmarks import contenders, grid, rounds

# %% [markdown]
# ## Facts first: every backend gives SciPy's answer, and which kernels are separable

# %%
rng = np.random.default_rng(0)
image = rng.standard_normal((96, 96)).astype(np.float32)
gaussian = np.outer(grid.gaussian(9), grid.gaussian(9)).astype(np.float32)
random_kernel = rng.standard_normal((9, 9)).astype(np.float32)
expected = scipy.signal.convolve(image.astype(np.float64), gaussian.astype(np.float64), "same")
signal_backends = []
for backend in convcore.list_backends():
    try:
        result = convcore.convolve(image, gaussian, "same", backend=backend)
    except ValueError as reason:           # a backend for CNN layers only says why not
        print(reason)
        continue
    assert np.allclose(result, expected, rtol=1e-4, atol=1e-4), backend
    signal_backends.append(backend)
print("backends:", ", ".join(signal_backends), "- all agree with scipy.signal")

# ranks of the exact (float64) kernels, by the separable backend's SVD and by NumPy's
gaussian64 = np.outer(grid.gaussian(9), grid.gaussian(9))
random64 = random_kernel.astype(np.float64)
print("rank of the 9x9 Gaussian:", decompose(gaussian64).rank,
      "  rank of a random 9x9 kernel:", decompose(random64).rank)
assert decompose(gaussian64).rank == np.linalg.matrix_rank(gaussian64) == 1
assert decompose(random64).rank == np.linalg.matrix_rank(random64) == 9
try:
    convcore.convolve(image, random_kernel, "same", backend="separable")
except ValueError as reason:                                  # the backend says why not
    print("separable on the random kernel:", reason)
else:
    raise AssertionError("separable should decline a full-rank kernel")

# %% [markdown]
# ## Time against kernel size
#
# A Gaussian blur (rank 1, so every backend can run) of an n x n float32 image, 'same' mode,
# for growing k; n = 512 by default, 128 in CI. The naive loop is skipped above 10^9
# multiply-adds (the benchmark grid's rule). `auto` is what `convcore.convolve` picks.
#
# Read the times with the load average in the stamp: on a machine that other processes keep
# busy, the backends that start a thread per core wait for the cores they do not get, and
# the crossovers move (on the shared 2-core development machine at a load average of 9, the
# FFT came out fastest at every size). Run the page again on a quiet machine to see its own.

# %%
n = _course.sized(512, 128)
sizes = _course.sized((3, 5, 7, 11, 15, 21, 31, 45, 63), (3, 9, 27))
repeats = _course.sized(3, 1)
rows = contenders.backends() + ["auto", "scipy.signal.convolve"]
times, chosen, declined = {row: {} for row in rows}, {}, {}
for k in sizes:
    problem = grid.Problem(f"course-n{n}-k{k}", "separable", grid.QUICK,
                           (("dtype", "float32"), ("k", (k, k)), ("kernel", "gaussian"),
                            ("mode", "same"), ("x", (n, n))))
    samples, unavailable = rounds.measure(problem, rows, rounds=repeats, calls=3)
    for row, values in samples.items():
        times[row][k] = float(np.median(values))
    declined.update({(row, k): why for row, why in unavailable.items()})
    chosen[k] = contenders.auto_choice(problem)
stamp = _course.stamp()
print(f"{n} x {n} float32, Gaussian k x k, 'same'; median seconds; measured on {stamp}")
print("k      " + "".join(f"{row.split('.')[0]:>11}" for row in rows) + "   auto picks")
for k in sizes:
    cells = "".join(f"{_course.format_seconds(times[row][k]) if k in times[row] else '-':>11}"
                    for row in rows)
    print(f"{k:<7}{cells}   {chosen[k]}")
for (row, k), why in sorted(declined.items()):
    print(f"  {row} at k = {k}: {why}")
kinds = {row: contenders.kind(row) for row in rows}
found = crossovers(times, kinds)
for k0, k1, before, after in found:
    print(f"crossover between k = {k0} and k = {k1}: {before} -> {after}")
# "FFT is faster": from which kernel size on, on this machine? (fft fastest of the backends
# at that size and every larger one measured)
fastest = {k: min((r for r in rows if kinds[r] == "backend" and k in times[r]),
                  key=lambda r: times[r][k]) for k in sizes}
fft_from = next((k for k in sizes if all(fastest[j] == "fft" for j in sizes if j >= k)), None)
print("on this machine FFT is the fastest backend " +
      (f"from k = {fft_from} on" if fft_from else "at no size of this sweep's end"))
print(convcore.explain(*grid.inputs(problem)[:2], "same"))     # auto's reasoning, largest k

# %% [markdown]
# ## Threads: the same loop on one core and on all of them

# %%
k_mid = sizes[len(sizes) // 2]
threaded = grid.Problem(f"course-threads-n{n}-k{k_mid}", "signal2d", grid.QUICK,
                        (("dtype", "float32"), ("k", (k_mid, k_mid)), ("mode", "same"),
                         ("x", (n, n))))
thread_rows = ["openmp@1", f"openmp@{contenders.THREADS}"]
thread_samples, _ = rounds.measure(threaded, thread_rows, rounds=repeats, calls=3)
one, every = (float(np.median(thread_samples[row])) for row in thread_rows)
print(f"openmp, {n}x{n}, k = {k_mid}: 1 thread {_course.format_seconds(one)}, "
      f"{contenders.THREADS} threads {_course.format_seconds(every)} (speed-up {one / every:.2g}x; "
      "below 1 when another process holds a core)")

# %% [markdown]
# ## Figure: time against kernel size, with the crossovers this machine found

# %%
plt = _course.pyplot()
figure, ax = plt.subplots(figsize=(9, 5.5))
for row in rows:
    if row == "auto" or not times[row]:
        continue
    ks = sorted(times[row])
    ax.plot(ks, [times[row][k] * 1e3 for k in ks], "-" if kinds[row] == "backend" else "--",
            marker=".", label=row)
for k in sorted(times["auto"]):
    ax.plot(k, times["auto"][k] * 1e3, "o", markersize=11, markerfacecolor="none",
            markeredgecolor="black")
    ax.annotate(chosen[k], (k, times["auto"][k] * 1e3), textcoords="offset points",
                xytext=(0, 9), ha="center", fontsize=7)
ax.plot([], [], "o", markerfacecolor="none", markeredgecolor="black", label="auto (its pick)")
for k0, k1, before, after in found:
    ax.axvline(np.sqrt(k0 * k1), color="grey", linestyle=":")
    ax.annotate(f"{before} -> {after}", (np.sqrt(k0 * k1), 0.02),
                xycoords=("data", "axes fraction"), rotation=90, fontsize=7, color="grey",
                ha="right")
ax.set_xscale("log", base=2)
ax.set_xticks(list(sizes), [str(k) for k in sizes])
ax.minorticks_off()
ax.set_yscale("log")
ax.set_xlabel("kernel size k (k x k Gaussian)")
ax.set_ylabel("median time per call (ms)")
ax.set_title(f"convolve({n}x{n} float32, k x k, 'same'): backends (solid), SciPy (dashed)")
ax.legend(fontsize=8)
ax.grid(True, which="both", alpha=0.3)
_course.save(figure, "04-time-vs-kernel-size", measured=True)
