"""A backend that records, inside a dask task, the threads convcore and threadpoolctl report.

Registered in the test process and in every worker process (``client.run(register)``);
each run appends one JSON line to the file named by ``backend_options={"log": path}``:
process id, start and end (``time.time()``), the call's ``ctx.threads``,
``convcore.get_num_threads()`` and the largest BLAS and OpenMP pools threadpoolctl sees. It
holds the task for ``HOLD`` seconds, so tasks on the two workers overlap, then writes zeros.
"""

import json
import os
import time

import convcore

HOLD = 0.3


class Recorder(convcore.Backend):
    name = "recorder"

    def supports(self, p, ctx):
        self.check_options(ctx.backend_options, known=("log",))
        if "log" not in ctx.backend_options:
            # Only a call that asks for it: a test after this one that measures every
            # backend (choose_conv_method(measure=True)) must not meet it.
            return "records only when asked: backend_options={'log': path}"
        return True if p.kind == "signal" else "signals only"

    def cost(self, p, ctx):
        return 1.0

    def prepare(self, p, ctx):
        def run(x, k, out):
            from threadpoolctl import threadpool_info

            start = time.time()
            pools = threadpool_info()
            blas = max([pool["num_threads"] for pool in pools if pool["user_api"] == "blas"],
                       default=0)
            openmp = max([pool["num_threads"] for pool in pools
                          if pool["user_api"] == "openmp"], default=0)
            time.sleep(HOLD)
            record = {"pid": os.getpid(), "start": start, "end": time.time(),
                      "pools": [(pool["internal_api"], pool["num_threads"],
                                 os.path.basename(pool["filepath"])) for pool in pools],
                      "ctx_threads": ctx.threads, "num_threads": convcore.get_num_threads(),
                      "blas": blas, "openmp": openmp}
            with open(ctx.backend_options["log"], "a") as log:
                log.write(json.dumps(record) + "\n")
            out[...] = 0
        return run


def register():
    if "recorder" not in convcore.list_backends():
        convcore.register_backend(Recorder())


def unregister():
    if "recorder" in convcore.list_backends():
        convcore.unregister_backend("recorder")


def records(path, exclude_pid=None):
    with open(path) as log:
        found = [json.loads(line) for line in log]
    return [r for r in found if r["pid"] != exclude_pid]


def most_threads_at_once(found):
    """The largest sum of ``ctx_threads`` over tasks running at the same moment."""
    events = sorted([(r["start"], r["ctx_threads"]) for r in found]
                    + [(r["end"], -r["ctx_threads"]) for r in found], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak
