"""Reading the API on several connections at once, for one writer.

Read tasks run on a small pool of threads. What they read comes back through
one bounded queue, in the order each task produced it, to the thread that
owns the database: so fetching overlaps writing, memory stays bounded by the
queue, and SQLite is only ever touched by one thread.
"""

import ctypes
import ctypes.util
import functools
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)

# Pages waiting for the writer, per connection: enough to keep both busy, few
# enough that memory does not grow with the connections.
QUEUED_PER_CONNECTION = 1


# glibc's mallopt() setting for the number of malloc arenas.
M_ARENA_MAX = -8


@functools.cache
def limit_malloc_arenas(arenas=2):
    """Share malloc arenas between the fetching threads.

    glibc gives each thread that allocates its own arena; pages parsed on one
    thread and freed on another then leave every arena half used, and the
    process grows with the length of the sync rather than with a page. A
    no-op where the C library is not glibc."""
    libc_name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(libc_name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


class AdaptiveLimit:
    """At most `limit` requests in flight; halved each time the server says
    it is rate limiting us, never below one."""

    def __init__(self, limit):
        self.limit = limit
        self._in_flight = 0
        self._changed = threading.Condition()

    def __enter__(self):
        with self._changed:
            while self._in_flight >= self.limit:
                self._changed.wait()
            self._in_flight += 1

    def __exit__(self, *exc_info):
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def lower(self):
        with self._changed:
            if self.limit > 1:
                self.limit //= 2
                logger.warning(
                    "Ivinex is rate limiting; now %d request(s) at a time", self.limit
                )


class Stopped(Exception):
    """The writer stopped the fetcher; the task gives up quietly."""


class Fetcher:
    """A pool of read tasks feeding one queue of events."""

    def __init__(self, client, concurrency):
        limit_malloc_arenas()
        self.client = client
        self.limit = AdaptiveLimit(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="fetch")
        self._events = queue.Queue(maxsize=concurrency * QUEUED_PER_CONNECTION)
        self._stopping = threading.Event()
        self._outstanding = 0
        self._count_lock = threading.Lock()
        self._rate_limited_seen = 0

    def submit(self, task, *args):
        """Run task(*args) on the pool; it reports through emit()."""
        with self._count_lock:
            self._outstanding += 1
        self._pool.submit(self._run, task, args)

    def call(self, method, *args, **kwargs):
        """One client call, within the limit; lowers the limit on 429s."""
        if self._stopping.is_set():
            raise Stopped()
        with self.limit:
            result = method(*args, **kwargs)
        rate_limited = self.client.rate_limited_count
        if rate_limited > self._rate_limited_seen:
            self._rate_limited_seen = rate_limited
            self.limit.lower()
        return result

    def emit(self, *event):
        """Hand an event to the writer, waiting while the queue is full."""
        while not self._stopping.is_set():
            try:
                self._events.put(event, timeout=0.1)
                return
            except queue.Full:
                continue
        raise Stopped()

    def events(self):
        """Yield events until every task submitted so far, or while this
        runs, has finished."""
        while True:
            with self._count_lock:
                if self._outstanding == 0 and self._events.empty():
                    return
            event = self._events.get()
            if event[0] == "task done":
                with self._count_lock:
                    self._outstanding -= 1
                continue
            yield event

    def close(self, wait=True):
        """Stop every task (each gives up at its next call or event)."""
        self._stopping.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _run(self, task, args):
        try:
            task(*args)
        except Stopped:
            pass
        except Exception as error:  # noqa: BLE001 - the writer re-raises it
            self._put_last(("failed", error))
        self._put_last(("task done",))

    def _put_last(self, event):
        try:
            self.emit(*event)
        except Stopped:
            pass
