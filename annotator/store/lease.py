"""Whether a run's lease holder still works on it (read by the run engine, `annotator runs` and retire).

The process working on a run holds a lease on its row (owner, host, pid, expiry) and renews it while it
works; annotator.llm.runstore takes and renews it, this module only reads it.
"""

from __future__ import annotations

import os
import socket

from annotator.store.models import Run, utcnow


def lease_alive(run: Run) -> bool:
    """Whether the lease holder still works on the run: on this machine, whether its process lives (a
    live holder keeps its run however long a request takes); elsewhere, whether it renewed in time."""
    if not run.lease_owner:
        return False
    if run.lease_host == socket.gethostname() and run.lease_pid:
        try:
            os.kill(run.lease_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return run.lease_until is not None and run.lease_until >= utcnow()
