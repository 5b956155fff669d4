"""Views kept at the log's end for readers, with a freshness check that costs O(topics) plus
O(new events), never O(history).

The check compares the log's end offsets with the ends the last fold reached, and folds only
when the log moved. Where asking for the ends is a local query (the SQLite log: one index probe
per topic) it runs on every check (FreshViews), so a reader sees its own writes. Where it is a
network round trip (Kafka), a watcher asks every `watch_every` seconds and folds when the ends
move, in a process of its own (WatchedViews): in a thread beside the HTTP server its protocol
work and the fold took the GIL from answers (p99 +1 ms, decision 0012). A check then reads the
watcher's last state and says how old it is.

Ends are compared with ends, not with the views' tracking positions: on Kafka a committed
transaction's marker takes an offset, so the position after the last record stays one short of
the end offset for ever, while the end a fold started from is exactly where it read to.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.audit.anchors import LocalWitness
from keel.audit.lease import holder, unfolded
from keel.audit.projectors import assemble
from keel.codec import Codec
from keel.errors import KeelError
from keel.log.port import EventLog, TopicPartition
from keel.signing import Signer, Trust
from keel.topics import EVENT_TOPICS
from keel.views.port import ViewStore

logger = logging.getLogger(__name__)
IDLE_CHECK = 1.0  # seconds between checks of the ends when no record arrived (with arrivals)
Ends = dict[TopicPartition, int]


@dataclass(frozen=True)
class Freshness:
    """How current an answer is: `lag` offsets of the log not yet in the views (0: none, as of
    `checked_ms_ago`), and the views' tracking positions ("topic/partition" -> next offset).
    `error`: why the views are not being kept current (their fold fails), when that is so;
    `lag` is then what they miss as of the failure (-1: unknown)."""

    lag: int
    checked_ms_ago: float
    positions: dict[str, int]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lag": self.lag,
            "checked_ms_ago": round(self.checked_ms_ago, 3),
            "positions": self.positions,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Failed:
    """What a views watcher sends when its check or fold fails: why, and how far behind the
    log the replica is (-1: not known, e.g. the log is out of reach)."""

    reason: str
    lag: int


def lag(ends: Ends, reached: Ends) -> int:
    return sum(max(0, end - reached.get(tp, 0)) for tp, end in ends.items())


# Seconds a reader of views it may not write waits for the projector service to catch up.
PROJECTOR_WAIT = 10.0


def await_projector(
    log: EventLog, views: ViewStore, name: str, needed: Ends, timeout: float
) -> tuple[Ends, bool]:
    """For a process that may only read the views: wait up to `timeout` seconds for the
    projector to have folded every record before `needed` (end offsets). Returns the tracking
    it reached and whether that covers every record. Tracking says "after the last record
    folded", while a transactional log's end also counts commit markers: where tracking is
    short of an end, the gap is read to see whether it holds a record at all."""
    deadline = time.monotonic() + timeout
    while True:
        reached = dict(views.tracking(name))
        if not unfolded(log, needed, reached):
            return reached, True
        if time.monotonic() > deadline:
            return reached, False
        time.sleep(0.1)


def require_projector(
    log: EventLog, views: ViewStore, name: str, needed: Ends, timeout: float
) -> None:
    """await_projector for a process about to decide on the views: a read model still behind
    after `timeout` is an error (nothing is decided on it)."""
    reached, done = await_projector(log, views, name, needed, timeout)
    if not done:
        raise KeelError(
            f"the read model is up to {lag(needed, reached)} event(s) behind the log after "
            f"waiting {timeout:.0f} s for the projector",
            hint="this process may only read the views (a secured Redis, reader user): run "
            "`keel service run projector` (it folds them), or give this process the "
            "projector's Redis credentials",
        )


class FreshViews:
    def __init__(
        self,
        log: EventLog,
        views: ViewStore,
        codec: Codec,
        signer: Signer | None = None,
        trust: Trust | None = None,
        name: str = "audit",
        witness: LocalWitness | None = None,
    ) -> None:
        self.log, self.views, self.codec, self.signer, self.name = log, views, codec, signer, name
        self.trust, self.witness = trust, witness
        self._lock = threading.Lock()
        self._folded: Ends | None = None  # the ends the last fold read to
        self._ends: Ends = {}
        self._checked = 0.0
        self._last = -1
        self._positions: dict[str, int] = {}
        self.folds = 0  # how many checks found the log moved and folded (for tests, metrics)

    def check(self) -> Freshness:
        self._refresh()
        return Freshness(
            lag(self._ends, self._folded or {}),
            (time.monotonic() - self._checked) * 1000,
            self._positions,
        )

    @property
    def folded_to(self) -> Ends:
        """The ends the last fold read to."""
        return dict(self._folded or {})

    def _await_projector(self, ends: Ends) -> None:
        """Views this process may only read (a secured Redis, reader user): the projector
        service folds them; wait a bounded while for it to reach `ends`, then answer with
        what it reached (check() reports the lag, so a stale answer is never silent)."""
        reached, done = await_projector(self.log, self.views, self.name, ends, PROJECTOR_WAIT)
        # caught up: remember the ends, so the next check with an unmoved log reads nothing
        self._folded = (
            dict(ends) if done else {tp: min(o, ends.get(tp, o)) for tp, o in reached.items()}
        )
        self._positions = {f"{t}/{p}": o for (t, p), o in sorted(reached.items())}

    def _refresh(self) -> None:
        probe = getattr(self.log, "last_offset", None)  # a cheaper "did anything change?"
        if probe is not None:
            last = probe()
            if last == self._last and self._folded is not None:
                self._checked = time.monotonic()
                return
            self._last = last
        ends = self.log.end_offsets(EVENT_TOPICS)
        self._ends, self._checked = ends, time.monotonic()
        if ends == self._folded:
            return
        if getattr(self.views, "read_only", False) or holder(self.views, self.name):
            # views this process may not write, or a projector service that folds them (its
            # lease): never fold here (that would take the service's writer identity)
            self._await_projector(ends)
            return
        with self._lock:
            if ends == self._folded:  # another thread folded while this one waited
                return
            assemble(
                self.log,
                self.views,
                self.codec,
                self.trust,
                name=self.name,
                signer=self.signer,
                witness=self.witness,
            ).run()
            self._folded = ends  # the run read at least to these
            self._positions = {
                f"{t}/{p}": o for (t, p), o in sorted(self.views.tracking(self.name).items())
            }
            self.folds += 1


class WatchedViews:
    """A replica of the views in a local SQLite file (`replica`), folded from the log by a
    watcher process of its own (opened from `settings` like any Keel process) and kept at the
    log's end; readers in this process open the file. On a remote log and views (Kafka +
    Redis) this puts an answer's reads in the answering process instead of one more network
    hop away: two hops (client -> API -> Redis) cost p99 ~2.5 ms here, one ~1 ms (decision
    0012). The replica only reads the log: it publishes no checkpoints (the projector does).

    A check costs no I/O but a poll of a pipe: the watcher sends its state when it changes and
    stamps a shared clock on every check of the log's ends. The first state (the replica
    folded to the log's end) arrives before the constructor returns. A watcher that died is
    started again on the next check; answers meanwhile say how old their check is."""

    def __init__(
        self,
        settings: Any,
        replica: Path,
        watch_every: float = 0.05,
        name: str = "audit",
        snapshots: Path | None = None,
        wait: bool = True,
    ) -> None:
        """snapshots: a directory of view snapshots (keel.audit.snapshot): a replica not yet
        on disk starts from the newest one that verifies (on a shared log, the newest one
        recorded there is first fetched from the artifact store: keel.audit.snapshot_store),
        then folds only the tail. wait:
        return only once the replica reached the log's end (False: at once; `ready` says when
        it has, and readers answer from elsewhere meanwhile)."""
        self.settings, self.replica, self.watch_every = settings, replica, watch_every
        self.name, self.snapshots = name, snapshots
        self._ctx = mp.get_context("spawn")  # fork would copy the server's threads and sockets
        self._checked = self._ctx.Value("d", time.monotonic(), lock=False)
        self._state: tuple[int, dict[str, int], int] = (0, {}, 0)
        self._ready = False
        self._failed: Failed | None = None  # the watcher's last failure, until a fold succeeds
        # how the replica started: {"snapshot": name or None, "events": n, "refused": [...]}
        self.start: dict[str, Any] | None = None
        replica.parent.mkdir(parents=True, exist_ok=True)
        self._start(wait)

    @property
    def folds(self) -> int:
        self._drain()
        return self._state[2]

    @property
    def ready(self) -> bool:
        """The replica has reached the log's end once (answers from it are current)."""
        if not self._ready:
            self._drain()
        return self._ready

    def check(self) -> Freshness:
        if not self._drain():
            logger.error("views watcher exited (%s); starting it again", self._proc.exitcode)
            self._proc.join(timeout=5)
            self._start(True)
        lagging, positions, _ = self._state
        ago = (time.monotonic() - self._checked.value) * 1000
        if self._failed is not None:  # answers say why they are stale, and by how much
            return Freshness(self._failed.lag, ago, positions, self._failed.reason)
        return Freshness(lagging, ago, positions)

    def close(self) -> None:
        self._proc.terminate()
        self._proc.join(timeout=10)

    def _drain(self) -> bool:
        """Take the watcher's latest state; False when it has exited."""
        try:
            while self._recv.poll():
                self._take(self._recv.recv())
        except (EOFError, OSError):
            return False
        return self._proc.is_alive()

    def _take(self, message: Any) -> None:
        if isinstance(message, dict):  # how it started, sent once before the first state
            self.start = message
        elif isinstance(message, Failed):
            self._failed = message
        else:
            self._state, self._ready, self._failed = message, True, None

    def _start(self, wait: bool) -> None:
        self._recv, send = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(
            target=_watch,
            args=(
                self.settings,
                self.replica,
                self.name,
                self.watch_every,
                send,
                self._checked,
                self.snapshots,
            ),
            name="keel-views-watcher",
            daemon=True,
        )
        self._proc.start()
        send.close()  # the child's copy is the only writer left: its exit ends the pipe
        if not wait:
            return
        try:
            # up to the views at the log's end, or the watcher's first failure: an API whose
            # every fold fails still starts, and its answers say why they are stale
            while not (self._ready or self._failed) or self._recv.poll():
                self._take(self._recv.recv())
        except EOFError:
            self._proc.join(timeout=5)
            raise KeelError(
                f"the views watcher could not start (exit code {self._proc.exitcode})",
                hint="its error is printed above; check KEEL_BUS and KEEL_VIEWS",
            ) from None


class FoldedElsewhere:
    """Freshness of views another process folds (the projector service's Redis views): the
    log's ends against their tracking, asking the log at most every `every` seconds (a network
    round trip on Kafka: not one per answer). On Kafka a committed transaction's marker counts
    one offset per partition, so `lag` is an upper bound."""

    def __init__(self, log: EventLog, views: ViewStore, name: str = "audit", every: float = 0.5):
        self.log, self.views, self.name, self.every = log, views, name, every
        self._checked = -every
        self._last = Freshness(0, 0.0, {})

    def check(self) -> Freshness:
        now = time.monotonic()
        if now - self._checked >= self.every:
            ends = self.log.end_offsets(EVENT_TOPICS)
            reached = self.views.tracking(self.name)
            positions = {f"{t}/{p}": o for (t, p), o in sorted(reached.items())}
            self._last, self._checked = Freshness(lag(ends, reached), 0.0, positions), now
        return Freshness(self._last.lag, (now - self._checked) * 1000, self._last.positions)


class StartingViews:
    """The views an API answers from while its replica starts: the deployment's own views
    (`fallback`, e.g. the projector's Redis) until the watcher says the replica reached the
    log's end, then the replica, opened only then (a snapshot may replace its file before).
    Every ViewStore method goes to whichever is current."""

    def __init__(self, watched: WatchedViews, fallback: ViewStore) -> None:
        self.watched, self.fallback = watched, fallback
        self._replica: ViewStore | None = None

    @property
    def on_replica(self) -> bool:
        return self._replica is not None or self.watched.ready

    @property
    def current(self) -> ViewStore:
        if self._replica is None:
            if not self.watched.ready:
                return self.fallback
            from keel.views.sqlite import SqliteViewStore

            self._replica = SqliteViewStore(self.watched.replica)
        return self._replica

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)


def _watch(
    settings: Any,
    replica: Path,
    name: str,
    every: float,
    send: Any,
    checked: Any,
    snapshots: Path | None = None,
) -> None:
    """The watcher process: fold into the replica when the log moves, send the state when it
    changes, and stop when the process that started it is gone. Where the log can say when
    records arrive (Kafka's `arrivals`), it sleeps until they do, checking the ends only when
    woken or every `IDLE_CHECK` seconds (so a broker that went away shows in checked_ms_ago);
    elsewhere it checks every `every` seconds. A replica not on disk yet starts from the newest
    snapshot in `snapshots` that verifies (each refused one logged as an error)."""
    from keel.audit.snapshot import restore
    from keel.audit.snapshot_store import fetch
    from keel.bootstrap import bootstrap
    from keel.views.sqlite import SqliteViewStore

    parent = mp.parent_process()
    with bootstrap(settings, create=False) as rt:
        if snapshots is not None and not replica.exists():
            # a pod sharing no home finds the snapshots recorded on the log (artifact store)
            fetched = fetch(rt, snapshots) if getattr(rt.log, "remote", False) else []
            started = restore(snapshots, replica, rt.trust).as_dict()
            send.send({**started, "refused": fetched + started["refused"]})
        views: SqliteViewStore | None = None
        fresh: FreshViews | None = None
        sent: tuple[int, dict[str, int], int] | Failed | None = None
        woken = True
        waker: Any = None
        last = 0.0
        while parent is None or parent.is_alive():
            if woken or time.monotonic() - last >= IDLE_CHECK:
                try:
                    if fresh is None:  # opened here: a replica that cannot be opened is a failure
                        views = SqliteViewStore(replica)  # answers report, not a hung start
                        # the public keys only: events are checked as the projector checks
                        # them, and no checkpoint is ever published from here
                        fresh = FreshViews(rt.log, views, rt.codec, Signer(rt.trust), name=name)
                    state = fresh.check()
                except Exception as exc:  # never die: answers say why they are stale
                    failed = Failed(
                        f"the views replica is not being folded: {type(exc).__name__}: {exc}",
                        _behind(rt.log, views, name),
                    )
                    if not isinstance(sent, Failed) or sent.reason != failed.reason:
                        logger.error("views watcher: %s", failed.reason)
                    if failed != sent:
                        send.send(failed)
                        sent = failed
                    time.sleep(IDLE_CHECK)  # a fold failing for good is not retried in a loop
                else:
                    last = checked.value = time.monotonic()
                    now = (state.lag, state.positions, fresh.folds)
                    if now != sent:
                        send.send(now)
                        sent = now
                    if waker is None and hasattr(rt.log, "arrivals"):
                        waker = rt.log.arrivals(EVENT_TOPICS, fresh.folded_to)
            if waker is None:
                time.sleep(every)
                woken = True
            else:
                woken = waker.wait(0.25)  # returns as soon as a record arrives


def _behind(log: EventLog, views: ViewStore | None, name: str) -> int:
    """How many log offsets the replica misses, as well as can be said after a failure."""
    try:
        return lag(log.end_offsets(EVENT_TOPICS), dict(views.tracking(name)) if views else {})
    except Exception:
        return -1
