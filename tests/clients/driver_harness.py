"""Checks, scenarios and known failures shared by the Python driver clients in tests/clients
(asyncpg, psycopg 3, SQLAlchemy). Each client runs the same scenarios against one target:

  direct        the first shard's primary itself: PostgreSQL is the oracle, everything must pass
  proxy-1shard  a proxy with one shard
  proxy-2shard  a proxy sharding the clients' tables by tenant_id over two shards

A scenario is a named group of checks. A client's KNOWN_FAILURES maps a scenario name (any proxy
target) or `TARGET:scenario` to the proxy bug it hits there. Such a scenario still runs: its
failing checks print as `xfail` and count as expected failures; if it passes, that is a failure
(`remove it from KNOWN_FAILURES`), so the list only shrinks. Against `direct` the list never
applies. Output: `ok - ...` / `FAIL - ...` / `xfail - ...` lines, then
`result: N passed, M failed, K expected failures` (read by lib.sh's run_client).
"""
import asyncio
import signal
import sys
import time

TARGETS = ("direct", "proxy-1shard", "proxy-2shard")


class ScenarioTimeout(Exception):
    pass


class Harness:
    def __init__(self, target, known_failures, budget_s=55):
        if target not in TARGETS:
            raise SystemExit(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
        self.target = target
        self.known_failures = known_failures
        self.passed = 0
        self.failed = 0
        self.xfailed = 0
        self.started = time.monotonic()
        self.budget_s = budget_s
        self._scenario = None
        self._failures = []

    @property
    def sharded(self):
        """True when the tables are sharded over two shards (tenant-keyed statements matter)."""
        return self.target == "proxy-2shard"

    def known_bug(self, scenario):
        if self.target == "direct":
            return None
        return self.known_failures.get(f"{self.target}:{scenario}") or self.known_failures.get(scenario)

    def check(self, name, expected, actual):
        if expected == actual:
            self.passed += 1
            print(f"ok   - [{self.target}] {self._scenario}: {name}", flush=True)
            return True
        self._fail(f"{name}\n       expected: {expected!r}\n       actual:   {actual!r}")
        return False

    def check_true(self, name, condition, detail=""):
        if condition:
            self.passed += 1
            print(f"ok   - [{self.target}] {self._scenario}: {name}", flush=True)
            return True
        self._fail(f"{name}" + (f"\n       {detail}" if detail else ""))
        return False

    def _fail(self, text):
        self._failures.append(text)
        bug = self.known_bug(self._scenario)
        if bug:
            self.xfailed += 1
            print(f"xfail - [{self.target}] {self._scenario}: {text}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL - [{self.target}] {self._scenario}: {text}", flush=True)

    def _begin(self, name):
        self._scenario = name
        self._failures = []
        if time.monotonic() - self.started > self.budget_s:
            self._fail(f"skipped: the {self.budget_s} s time budget is spent")
            return False
        return True

    def _end(self, name):
        bug = self.known_bug(name)
        if bug and not self._failures:
            self.failed += 1
            print(f"FAIL - [{self.target}] {name}: passed, but KNOWN_FAILURES lists it ({bug}); "
                  "remove it from the list", flush=True)
        elif bug:
            print(f"# [{self.target}] {name}: expected failure: {bug}", flush=True)
        self._scenario = None

    @staticmethod
    def describe(e):
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if state is None and getattr(e, "diag", None) is not None:
            state = e.diag.sqlstate
        return f"{type(e).__name__}{f' [SQLSTATE {state}]' if state else ''}: {e}".rstrip()

    def run(self, name, fn, timeout_s=20):
        """Runs a synchronous scenario; an exception or a hang (SIGALRM) is one failed check."""
        if not self._begin(name):
            return self._end(name)

        def on_alarm(signum, frame):
            signal.alarm(5)  # the driver's cleanup (closing a stuck connection) may hang too
            raise ScenarioTimeout(f"no answer within {timeout_s} s")

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(timeout_s)
        try:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - any driver error is a failed check
                self._fail(f"raised {self.describe(e)}")
        except ScenarioTimeout as e:  # raised again while the failure above was being reported
            self._fail(f"cleanup raised {e}")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        self._end(name)

    async def arun(self, name, coro_fn, timeout_s=20):
        """Runs an asyncio scenario; an exception or a hang is one failed check."""
        if not self._begin(name):
            return self._end(name)
        try:
            await asyncio.wait_for(coro_fn(), timeout_s)
        except asyncio.TimeoutError:
            self._fail(f"no answer within {timeout_s} s")
        except Exception as e:  # noqa: BLE001 - any driver error is a failed check
            self._fail(f"raised {self.describe(e)}")
        self._end(name)

    def finish(self):
        print(f"result: {self.passed} passed, {self.failed} failed, {self.xfailed} expected failures",
              flush=True)
        sys.exit(1 if self.failed else 0)
