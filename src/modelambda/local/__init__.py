"""The local Lambda emulator: Lambda's real behaviour on one machine, no Docker.

- ``httpserver``: a small asyncio HTTP/1.1 server (keep-alive, TCP_NODELAY) for both APIs;
- ``runtime_api``: the Runtime API that each environment's runtime client (awslambdaric) polls;
- ``sandbox``: the bubblewrap command line (or the plain-process fallback) for one environment;
- ``environment``: one execution environment: process, init, invokes, timeout, memory, logs;
- ``function``: a function's environments: reuse, scale-out to its concurrency, throttling,
  idle reaping, and its asynchronous (Event) queue with retries and an on-failure file;
- ``front``: the front doors on one port: Invoke API, Function URL, ``/health``;
- ``emulator``: ties them together on one event loop (in a thread, for tests and ``up``).
"""
