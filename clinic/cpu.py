"""One thread for the numerical libraries' own thread pools in the servers.

numpy and scipy each bring OpenBLAS, which starts one worker thread per core at import.
Between the small matrix products of one message (featurizers, the classifier) a worker
does not sleep: it spins on `sched_yield` waiting for the next product. In the Rasa server
under load that kept one of a 2-core machine's cores busy doing nothing (seen with
`top -H` and gdb during the default soak, docs/benchmarks.md), so every message waited
for the other. A server answers many small requests at once: it gains nothing from
splitting one product over threads, and the operating system already spreads the
servers over the cores.

The limits are environment variables the libraries read when they load, so
`one_blas_thread` must run before numpy is first imported; a value already set (by the
clinic's IT person, say) is kept.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: The thread-count variables of OpenBLAS and OpenMP (scikit-learn's libgomp).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def one_blas_thread(environ: MutableMapping[str, str] = os.environ) -> None:
    """Ask the numerical libraries for one thread each, unless told otherwise."""
    for name in THREAD_VARIABLES:
        environ.setdefault(name, "1")
