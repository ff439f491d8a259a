"""The servers ask numpy's and scipy's OpenBLAS for one thread (clinic.cpu).

Each server module is imported in a fresh interpreter, then numpy and scipy, and
threadpoolctl (a scikit-learn dependency, so always beside Rasa) reports how many threads
each loaded BLAS library was given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from clinic import cpu

REPORT = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    "import numpy, scipy.linalg; from threadpoolctl import threadpool_info; "
    "print(json.dumps([i['num_threads'] for i in threadpool_info() "
    "if i['internal_api'] == 'openblas']))"
)


def blas_threads(module: str, **extra: str) -> list[int]:
    env = {k: v for k, v in os.environ.items() if k not in cpu.THREAD_VARIABLES}
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "-c", REPORT, module],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["bot.server", "actions.__main__"])
def test_a_server_module_limits_blas_to_one_thread_before_numpy_loads(module):
    threads = blas_threads(module)
    assert threads and set(threads) == {1}


def test_without_the_servers_blas_takes_every_core():
    """The check above can fail: plain numpy on this machine starts more threads."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: OpenBLAS starts one thread anyway")
    assert max(blas_threads("json")) > 1


def test_a_limit_the_clinic_set_is_kept():
    assert set(blas_threads("bot.server", OPENBLAS_NUM_THREADS="2")) == {2}


def test_one_blas_thread_fills_only_what_is_unset():
    environ = {"OMP_NUM_THREADS": "4"}
    cpu.one_blas_thread(environ)
    assert environ == {"OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "1"}
