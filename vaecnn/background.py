"""One background thread for a run's slow writes, so that training goes on while they finish.

A job in flight is at most one: `submit` first waits for the previous job, and `wait` returns once the
job has finished. A job's error is raised in the caller's thread, by the next `submit`, `wait` or
`close`, as the job raised it (a DiskFull keeps its one line). So a writer that waits before anything
reads what it wrote, and closes at the end of the run, fails as loudly as if it wrote in place.
"""

import concurrent.futures
from collections.abc import Callable


class Worker:
    def __init__(self, name: str):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: concurrent.futures.Future | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Runs job() in the background, once the previous job has finished."""
        self.wait()
        self._pending = self._pool.submit(job)

    def wait(self) -> None:
        """Returns when no job is in flight; raises the error of the job that was."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
