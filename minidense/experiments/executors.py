"""Where independent trainings run when not one after another here: in worker processes on this
machine (``jobs``), or on a running Dask cluster (``executor="dask"``).

Each task is ``fn(*args)`` with ``fn`` a module-level function (sent by name, so every worker
imports it from its own installed minidense); it saves its own result, and these runners only say
which task finished. Used by the ablation (:mod:`minidense.experiments.ablation`).
"""

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager

from tqdm.auto import tqdm

EXECUTORS = ("local", "dask")
DASK_INSTALL = 'pip install "minidense[dask]" (in a checkout: pip install -e ".[dask]")'
# Read once, when a worker first imports NumPy's BLAS and numba: they must be in its environment
# before that, so they are set in the environment it starts with.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")  # fmt: skip


def available_cores():
    """The cores this process may run on (its affinity mask, which a batch scheduler narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_executor(fn, jobs, executor, scheduler):
    """``jobs`` an int >= 1; ``executor`` one of EXECUTORS; ``scheduler`` an address exactly when
    the executor is Dask; and Dask's ``distributed`` importable when asked for."""
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"{fn}: jobs must be a positive integer, got {jobs!r}")
    if jobs < 1:
        raise ValueError(f"{fn}: jobs must be a positive integer, got {jobs}")
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise ValueError(f"{fn}: executor must be one of {EXECUTORS}, got {executor!r}")
    if executor == "local":
        if scheduler is not None:
            raise ValueError(f"{fn}: scheduler is only for executor='dask' (--executor dask)")
        return
    if jobs != 1:
        raise ValueError(
            f"{fn}: jobs is for executor='local'; a Dask cluster trains as many variants at once "
            "as it has workers"
        )
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(
            f"{fn}: executor='dask' needs scheduler, the address of a running Dask scheduler "
            f"(--scheduler tcp://HOST:8786), got {scheduler!r}"
        )
    _distributed()


def _distributed():
    try:
        import distributed
    except ImportError:
        raise RuntimeError(
            f"executor 'dask' needs Dask's distributed, an optional extra: {DASK_INSTALL}"
        ) from None
    return distributed


def plan_workers(jobs, tasks, cores=None):
    """``(workers, threads)``: at most ``jobs`` workers, no more than the tasks or the cores, and
    the cores shared out among them so that workers × threads <= cores."""
    cores = available_cores() if cores is None else cores
    workers = max(1, min(jobs, tasks, cores))
    return workers, max(1, cores // workers)


def run_tasks(fn, tasks, labels, *, jobs=1, executor="local", scheduler=None, progress=True,
              finished_before=0):  # fmt: skip
    """Run ``fn(*args)`` for each ``args`` in ``tasks``; yield each task's index as it finishes,
    with a bar of finished tasks (``labels[i]`` names task i on it). The first failure is raised
    once the tasks running then have ended (what they saved is kept); the rest do not start."""
    bar = tqdm(total=finished_before + len(tasks), initial=finished_before, disable=not progress,
               desc="ablation", unit="variant")  # fmt: skip
    runner = _run_dask if executor == "dask" else _run_local
    try:
        for i in runner(fn, tasks, jobs, scheduler, progress):
            bar.update(1)
            bar.set_postfix_str(f"{labels[i]} done")
            yield i
    finally:
        bar.close()


def _say(progress, text):
    if progress:
        tqdm.write(text)


@contextmanager
def _environment(values):
    """``os.environ`` with ``values`` while a block runs (workers started in it inherit them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_local(fn, tasks, jobs, scheduler, progress):
    cores = available_cores()
    workers, threads = plan_workers(jobs, len(tasks), cores)
    capped = f" (--jobs {jobs} capped at {workers})" if workers < jobs else ""
    _say(progress, f"{len(tasks)} variants on {workers} worker processes × {threads} thread"
                   f"{'s' if threads > 1 else ''} each, {cores} cores{capped}")  # fmt: skip
    # 'spawn': a fresh interpreter per worker. Numba's and OpenBLAS's thread pools do not survive
    # fork, and a forkserver would hand out its own environment, not the thread counts set here.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context)
    queue = list(enumerate(tasks))[::-1]
    running = {}

    def submit():
        i, args = queue.pop()
        running[pool.submit(fn, *args)] = i

    try:
        # One task per worker, each started by its submit: all of them here, with these counts.
        with _environment(dict.fromkeys(THREAD_VARIABLES, str(threads))):
            for _ in range(workers):
                submit()
        # The rest one at a time as workers free up, so that nothing waits in the pool's queue: on
        # ^C (which reaches the workers too) or an error, the pool stops as soon as they do.
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                i = running.pop(future)
                future.result()  # a worker's error, raised here
                if queue:
                    submit()
                yield i
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(fn, tasks, jobs, scheduler, progress):
    distributed = _distributed()
    with distributed.Client(scheduler) as client:
        threads = client.nthreads()
        # Where numba finds no OpenMP, minidense's parallel kernels run on its workqueue layer,
        # which aborts its process when two threads launch kernels at once: one training per
        # worker process.
        crowded = {w: n for w, n in threads.items() if n > 1}
        if crowded:
            raise ValueError(
                f"the Dask workers of {scheduler} must run one task at a time, but "
                f"{len(crowded)} of them have {max(crowded.values())} threads: start them with "
                "`dask worker ADDRESS --nthreads 1` (give each one its cores with "
                "NUMBA_NUM_THREADS and OMP_NUM_THREADS)"
            )
        _say(progress, f"{len(tasks)} variants to the Dask cluster at {scheduler} "
                       f"({len(threads)} workers now)")  # fmt: skip
        futures = [client.submit(fn, *args, pure=False) for args in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future in distributed.as_completed(futures):
                future.result()  # a worker's error, raised here
                yield index[future.key]
        finally:
            client.cancel([f for f in futures if not f.done()])
