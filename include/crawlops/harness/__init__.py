"""The contract harness, beside the worker kit (never inside it: it dispatches with the
package's own dispatch and migrates a scratch database, which the kit must not depend on).

- ``check``: ``python -m crawlops.harness.check [--object NAME] -- <worker command>``, the
  contract test a crawl team runs against its worker; ``rules``: its rules, one function each;
- ``fakesite`` (with ``fakepages``): the fake site the check (and the example spiders)
  crawls: search, product and review pages;
- ``simulator``: ``python -m crawlops.harness.simulator --workers N``, a SIMULATED crawler
  fleet on the kit, for the demo, tests, benchmarks and the soak.
"""
