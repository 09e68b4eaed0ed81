"""Benchmarks: a load generator built on the project's own client-side codecs, the
baselines it is compared against, and the suite that runs them (``python -m bench``).

Layout:
- ``suite``: the one command; starts Redis, the gateway and the baselines, drives the
  load generator, prints the table, records results (docs/BENCHMARKS.md) and the plot.
- ``loadgen``: the load generator process (asyncio, non-blocking sockets).
- ``clients``: OSCAR, MSN and relay client connections for the load generator.
- ``ledger``: message bodies, sequence numbers and latency accounting.
- ``dataset``: bench accounts, created in worker processes and cached.
- ``relay``: the raw Twisted TCP relay baseline (its own process).
- ``redisbench``, ``machine``, ``procstat``, ``profile``, ``report``: the rest.
"""
