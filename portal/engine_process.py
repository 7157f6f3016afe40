"""One lifecycle engine in a process of its own, for `manage.py bench_lifecycle --engines 2`.

The process is spawned (a fresh interpreter), not forked: a fork copies the parent's open database
sockets and threads, which then interfere with each other. So this module imports nothing of Django's at
the top; the function sets Django up, connects to the database the parent names (a test database too),
waits for the start signal and runs one engine pass.
"""

import time
from dataclasses import asdict


def run_engine(now, go, ready, results, database_name: str) -> None:
    # Imported here, not at the top: the spawned process sets Django up first (see the module's docstring).
    import django  # noqa: PLC0415 (no Django before the process starts)

    django.setup()
    from django.db import connection, connections  # noqa: PLC0415 (only once Django is set up)

    from subscriptions.lifecycle import run_lifecycle  # noqa: PLC0415 (only once Django is set up)

    try:
        connection.settings_dict["NAME"] = database_name
        connection.ensure_connection()
        ready.put(True)
        go.wait()
        started, cpu = time.perf_counter(), time.process_time()
        report = run_lifecycle(now)
        results.put(("ok", asdict(report), (time.perf_counter() - started, time.process_time() - cpu)))
    except BaseException as error:  # noqa: BLE001 (sent to the parent, which fails the bench)
        ready.put(False)  # never leave the parent waiting
        results.put(("error", repr(error), (0.0, 0.0)))
    finally:
        connections.close_all()
