"""The error types the emulator reports, as Lambda names them (``errorType`` of a function
error payload, ``Error Type`` of an INIT_REPORT line).

``pyric.py`` carries its own copies of the runtime client's names, because it runs inside
environments where modelambda cannot be imported; a test checks that they agree.
"""

from __future__ import annotations

# the runtime client (awslambdaric, pyric.py) while importing the handler
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
# a failure that named no type of its own
UNKNOWN = "Runtime.Unknown"

# the environment's process
EXIT_ERROR = "Runtime.ExitError"  # exited or was killed by a signal
OUT_OF_MEMORY = "Runtime.OutOfMemory"  # over the function's memory size
START_ERROR = "Runtime.StartError"  # could not even be started (emulator-side)
INIT_TIMEOUT = "Runtime.InitTimeout"  # SnapStart: the snapshot's init ran out of time

# SnapStart restores (emulator-side names)
RESTORE_TIMEOUT = "Runtime.RestoreTimeout"  # the after-restore hooks ran past 10 s
RESTORE_ERROR = "Runtime.RestoreError"  # the restored environment vanished at start
SNAPSHOT_LOST = "Runtime.SnapshotLost"  # the template process exited

# the invocation
TIMED_OUT = "Sandbox.Timedout"  # past the function's timeout
RESPONSE_SIZE_TOO_LARGE = "Function.ResponseSizeTooLarge"  # over the 6 MB response limit
