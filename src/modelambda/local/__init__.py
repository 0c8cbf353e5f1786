"""The local Lambda emulator: Lambda's real behaviour on one machine, no Docker.

- ``httpserver``: a small asyncio HTTP/1.1 server (keep-alive, TCP_NODELAY) for both APIs;
- ``environment``: one execution environment: its process, the Runtime API that its runtime
  client (awslambdaric, or ``pyric`` where awslambdaric has no wheel) polls, init, invokes,
  timeout, memory, logs;
- ``sandbox``: the bubblewrap command line (or the plain-process fallback) for one environment;
- ``snapstart`` (and ``snapstart_boot``, which runs inside the environment): snapshot and
  restore of an initialised environment;
- ``function``: a function's environments: reuse, scale-out to its concurrency, throttling,
  idle reaping, and its asynchronous (Event) queue with retries and an on-failure file;
- ``front``: the front doors on one port: Invoke API, Function URL, ``/health``;
- ``emulator``: ties them together on one event loop (in a thread, for tests and ``up``);
- ``services`` and ``resources``: a service spec built and described as a function, and what
  its strategy needs started locally (embedded S3 via ``s3server``, ``endpoint_host``);
- ``state``: where running emulators are found (``invoke NAME``, ``models``);
- ``lambda_runtime``: what Lambda's Python runtime provides at ``/var/runtime``.
"""
