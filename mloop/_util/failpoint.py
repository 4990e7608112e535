"""Named crash points for the restart-safety tests: ``MLOOP_FAILPOINT=<name>`` (``MLOOP_AUTOMATION_FAILPOINT``
too, for automation's) makes the process end at once there, as kill -9 would (no cleanup, no commit of an open
transaction). A test arms one; nothing else does."""

import os


def failpoint(name: str) -> None:
    """End the process now when the failpoint ``name`` is armed; otherwise nothing."""
    if name in (os.environ.get("MLOOP_FAILPOINT"), os.environ.get("MLOOP_AUTOMATION_FAILPOINT")):
        os._exit(137)
