"""Airflow `hostname_callable` for Celery workers that share one machine.

In a worker's processes (and the task processes they fork) the hostname Airflow records on
each task instance is the worker's Celery node name, from its `-H` option (`worker1@%h` ->
`worker1@vm`), so the UI and REST API tell co-located workers apart. Elsewhere it is the
machine's FQDN, as with Airflow's default (`airflow.utils.net.getfqdn`).
"""

from __future__ import annotations

import sys

FLAGS = ("-H", "--celery-hostname")


def celery_node_name(argv: list[str]) -> str | None:
    """The `-H`/`--celery-hostname` value of an `airflow celery worker` command line."""
    for i, arg in enumerate(argv):
        if arg in FLAGS and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--celery-hostname="):
            return arg.split("=", 1)[1]
    return None


def get_hostname() -> str:
    is_worker = "celery" in sys.argv and "worker" in sys.argv
    name = celery_node_name(sys.argv) if is_worker else None
    if name is None:
        from airflow.utils.net import getfqdn

        return getfqdn()
    from celery.utils.nodenames import host_format

    return host_format(name)
