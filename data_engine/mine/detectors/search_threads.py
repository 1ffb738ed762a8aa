"""Neighbour searches of disjoint blocks of query rows, run side by side on the machine's cores.

In a faiss graph (HNSW) or list (inverted file) search every query row's answer depends on that
row and the index alone, so blocks of rows can be searched at once on several threads and the
answers are the same as one after the other (``tests/mine/test_search_threads.py``). faiss
releases Python's interpreter lock while it searches, so the threads use the cores. Each thread
runs faiss on one OpenMP thread of its own (OpenMP's thread count belongs to the calling thread):
no OpenMP team spins waiting for a busy core, which made faiss's own threads slower than one on
this shared two-core machine (docs/mining.md). The graph's build stays on one thread: its links,
and so every neighbour, would depend on the threads' timing.

Written by hand because faiss parallelises a search with OpenMP only (the spinning team above)
and scikit-learn's thread pools do not reach faiss's calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from data_engine.mine.detectors.faiss_calls import one_faiss_thread

Item = TypeVar("Item")

# More threads than this rarely pay for a search that reads the whole index from memory.
MAX_SEARCH_THREADS = 8


def search_threads() -> int:
    """Threads for a search: faiss's OpenMP thread limit (the cores this process may use, or
    ``OMP_NUM_THREADS`` when set: ``OMP_NUM_THREADS=1`` keeps every search on one thread), at most
    :data:`MAX_SEARCH_THREADS`."""
    import faiss

    return max(1, min(MAX_SEARCH_THREADS, faiss.omp_get_max_threads()))


def side_by_side(search: Callable[[Item], None], items: Iterable[Item], *, threads: int | None = None) -> None:
    """Call ``search(item)`` for every item, on up to ``threads`` threads at once (default
    :func:`search_threads`), each with faiss on one OpenMP thread. ``search`` writes its answers
    into rows of its own (disjoint between items); the first error raised by a call is raised here
    once every started call has ended."""
    threads = search_threads() if threads is None else max(1, threads)

    def one(item: Item) -> None:
        with one_faiss_thread():
            search(item)

    if threads == 1:
        for item in items:
            one(item)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="neighbour-search") as pool:
        # list() drains the answers in order, raising a call's error.
        list(pool.map(one, items))
