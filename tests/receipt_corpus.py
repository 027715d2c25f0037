"""Generated programs for `patched` as a receipt (issue 25): random edits of code reached
in the shapes where peers say "patched" and nothing changes, at opt-levels 0 to 3.

Each program has the same *sites*, each a piece of code whose constant the edits change
and that prints `S<site> v=<value>`, with `v = base + k + g * 1_000_000` (`g`: how many
times that site was edited, `k`: the constant; `base` is what the site computes from its
input, printed as `b=`):
- `thread`: a function a thread runs in a loop calls (`tick`), the loop started at launch;
- `loop`: the body of a thread's own loop, which never returns (its new code cannot run);
- `map`: a closure run by `Iterator::map` and `sum`, instances of core's generics;
- `option`: a closure run by `Option::map`;
- `scope`: a closure run on a thread of `std::thread::scope`;
- `dyn`: a trait method called through a `Box<dyn Trait>` made at launch;
- `fnptr`: a function called through a pointer stored at launch;
- `future`: an `async fn`, polled by a small executor (std only, no tokio);
- `init`: a function that ran once at launch and never runs again.

Programs with dependencies (`deps=True`: rayon and tokio from crates.io, versions pinned by
tests/receipt_corpus.Cargo.lock) have three sites more:
- `rayon`: a closure run by `into_par_iter().map(..).max()` on rayon's pool threads;
- `tokio`: an `async fn` awaited, a fresh future each time, by a task of a multi-thread
  tokio runtime that loops on `tokio::time::sleep`;
- `task`: the body of a long-lived tokio task, an `async fn` whose loop is held across an
  await (its future is never made again: a live frame, in the shape of a poll function).
Their cargo target directory is kept per opt-level in a cache folder and reused by every
program of that opt-level, so the dependencies are built once (`cached_folder`).

An edit changes one site. Its outcome: `new` (lines of the new generation of that site
appeared), `named` (the `patched` event, or an event after it, names a function of the
site and says why its new code has not run: HL1012 live frames, HL1013 not run since the
patch, HL1010), `silent` (neither: the receipt was false), `crash`, or `wrong` (a value no
code computes). The issue asks for no `silent` in at least 200 cases. A `new` edit whose
site is later reported as not run since its patch (HL1013) is `false-not-run`: the user
would be told to restart for code that runs.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from abi_corpus import EXECUTOR
from hotline.engine.analyse.demangle import demangle
from hotline.engine.report.receipts import NOT_RUN_AFTER
from hotline.engine.session import Session

MARK = 1_000_000
SITES = ["thread", "loop", "map", "option", "scope", "dyn", "fnptr", "future", "init"]
DEPS_SITES = ["rayon", "tokio", "task"]  # in programs built with rayon and tokio
LOCK = Path(__file__).resolve().parent / "receipt_corpus.Cargo.lock"
DEPENDENCIES = (
    'rayon = "1"\n'
    'tokio = { version = "1", default-features = false, features = ["rt-multi-thread", "time"] }\n'
)
# the functions whose names an event must carry for an edit of the site to count as named
SITE_FUNCTIONS = {  # the site's own functions, and the loops they may be inlined into
    "thread": ["tick", "main::{{closure}}"],
    "loop": ["looper"],
    "map": ["step", "{{closure}}", "k_map"],
    "option": ["step", "{{closure}}", "k_option"],
    "scope": ["step", "{{closure}}", "k_scope"],
    "dyn": ["describe", "main"],
    "fnptr": ["pointed", "main"],
    "future": ["compute", "main"],
    "init": ["init", "main"],
    "rayon": ["k_rayon", "par_step", "{{closure}}"],
    "tokio": ["tokio_site", "ticker_task"],
    "task": ["held_loop"],
}

DEPS_SITES_TEXT = """
fn k_rayon() -> u64 {
    @rayon@
}

async fn tokio_site(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n % 8 + @tokio@
}

async fn held_loop() {
    let mut n = 0u64;
    loop {
        n += 1;
        say(format!("Stask b={} v={}", n % 5, n % 5 + @task@));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
"""

DEPS_CODE = """
async fn ticker_task() {
    let mut n = 0u64;
    loop {
        n += 1;
        say(format!("Stokio b={} v={}", n % 8, tokio_site(n).await));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[inline(never)]
fn par_step(n: u64) {
    use rayon::prelude::*;
    // every item is the same value: a call that mixes old and new code still prints one
    // generation's value (the newest: generations only add)
    let r = (0..4u64).into_par_iter().map(|_| n % 4 + k_rayon()).max().unwrap();
    say(format!("Srayon b={} v={r}", n % 4));
}

fn start_tokio() {
    std::thread::Builder::new().name("tokio".into()).spawn(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::spawn(held_loop());
            tokio::spawn(ticker_task());
            std::future::pending::<()>().await
        })
    }).unwrap();
}
"""

TEMPLATE = (
    EXECUTOR
    + """
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

// BEGIN SITES
fn tick(n: u64) -> u64 {
    n % 7 + @thread@
}

fn looper() {
    let mut n = 0u64;
    loop {
        n += 1;
        say(format!("Sloop b={} v={}", n % 5, n % 5 + @loop@));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn k_map() -> u64 {
    @map@
}

fn k_option() -> u64 {
    @option@
}

fn k_scope() -> u64 {
    @scope@
}

trait Describe {
    fn describe(&self, n: u64) -> u64;
}
struct Thing;
impl Describe for Thing {
    fn describe(&self, n: u64) -> u64 {
        n % 3 + @dyn@
    }
}

fn pointed(n: u64) -> u64 {
    n % 4 + @fnptr@
}

async fn compute(n: u64) -> u64 {
    Yield(false).await;
    n % 6 + @future@
}

fn init() -> u64 {
    @init@
}
@deps-sites@// END SITES
@deps-code@
#[inline(never)]
fn step(n: u64) {
    let m = (0..n % 4 + 1).map(|x| x + k_map()).max().unwrap();
    say(format!("Smap b={} v={m}", n % 4));
    let o = Some(n).map(|x| x % 9 + k_option()).unwrap_or(0);
    say(format!("Soption b={} v={o}", n % 9));
    let s = std::thread::scope(|sc| sc.spawn(|| n % 2 + k_scope()).join().unwrap());
    say(format!("Sscope b={} v={s}", n % 2));
}

fn main() {
    let first = init();
    let thing: Box<dyn Describe> = Box::new(Thing);
    let pointer: fn(u64) -> u64 = pointed;
    std::thread::Builder::new().name("ticker".into()).spawn(|| {
        let mut n = 0u64;
        loop {
            n += 1;
            say(format!("Sthread b={} v={}", n % 7, tick(n)));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }).unwrap();
    std::thread::Builder::new().name("looper".into()).spawn(looper).unwrap();
    @deps-start@
    let mut n = 0u64;
    loop {
        n += 1;
        step(n);
        @deps-step@
        say(format!("Sdyn b={} v={}", n % 3, thing.describe(n)));
        say(format!("Sfnptr b={} v={}", n % 4, pointer(n)));
        say(format!("Sfuture b={} v={}", n % 6, block_on(compute(n))));
        say(format!("Sinit b=0 v={first}"));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
"""
)


@dataclass
class Outcome:
    opt: int
    site: str
    gen: int
    result: str  # new | named | silent | crash | wrong | false-not-run
    detail: str = ""
    seq: int | None = None  # its patch


def source(constants: dict[str, int], deps: bool = False) -> str:
    text = TEMPLATE
    for hole, filled in [
        ("@deps-sites@", DEPS_SITES_TEXT.lstrip("\n")),
        ("@deps-code@", DEPS_CODE),
        ("@deps-start@", "start_tokio();"),
        ("@deps-step@", "par_step(n);"),
    ]:
        text = text.replace(hole, filled if deps else "")
    for site, value in constants.items():
        text = text.replace(f"@{site}@", str(value))
    return text


class ReceiptApp:
    """One generated program under a real Session, edited one site at a time."""

    def __init__(
        self, folder: Path, opt: int, rng: random.Random, deps: bool = False, plan: list[str] | None = None
    ) -> None:
        self.folder, self.opt, self.rng, self.deps = folder, opt, rng, deps
        self.sites = SITES + DEPS_SITES if deps else SITES
        self.plan = list(plan or [])  # sites edited first, in this order; then drawn at random
        (folder / "src").mkdir(parents=True, exist_ok=True)
        (folder / "Cargo.toml").write_text(
            f'[package]\nname = "receipts"\nversion = "0.1.0"\nedition = "2021"\n\n'
            f"[dependencies]\n{DEPENDENCIES if deps else ''}\n[profile.dev]\nopt-level = {opt}\n"
        )
        if deps:
            shutil.copyfile(LOCK, folder / "Cargo.lock")  # the versions every run builds
        self.gens = dict.fromkeys(self.sites, 0)
        self.k = {site: rng.randint(1, 900) for site in self.sites}
        self.accepted: dict[str, set[int]] = {site: {self.k[site]} for site in self.sites}
        self._save()
        self.lines: list[str] = []
        self.events: list[dict] = []
        self.cv = threading.Condition()
        self.checked = 0
        self.session = Session(folder, self._on_event)

    def _constants(self) -> dict[str, int]:
        return {site: self.k[site] + self.gens[site] * MARK for site in self.sites}

    def _save(self) -> None:
        path = self.folder / "src" / "main.rs"
        temp = path.with_suffix(".rs.saving")
        temp.write_text(source(self._constants(), self.deps))
        temp.replace(path)

    def _on_event(self, e: dict) -> None:
        with self.cv:
            self.events.append(e)
            if e["event"] == "app-output" and e["stream"] == "stdout":
                self.lines.append(e["line"])
            self.cv.notify_all()

    def exited(self) -> list[dict]:
        with self.cv:
            return [e for e in self.events if e["event"] == "app-exited"]

    def wait(self, pred: Callable[[str], bool], timeout: float, after: int) -> bool:
        deadline = time.monotonic() + timeout
        with self.cv:
            while not any(pred(s) for s in self.lines[after:]):
                left = deadline - time.monotonic()
                if left <= 0 or any(e["event"] == "app-exited" for e in self.events):
                    return False
                self.cv.wait(left)
            return True

    def wrong(self) -> str | None:
        """The first line since the last call whose value no generation of its site computes."""
        with self.cv:
            lines, self.checked = self.lines[self.checked :], len(self.lines)
        for line in lines:
            if not line.startswith("S"):
                continue
            site, *rest = line[1:].split()
            values = dict(p.split("=", 1) for p in rest)
            k = int(values["v"]) - int(values["b"])
            if k not in self.accepted.get(site, set()):
                return f"{line!r}: no generation of {site} has the constant {k}"
        return None

    def named(self, site: str, since: int) -> str | None:
        """A warning or event since `since` that names a function of `site`."""
        with self.cv:
            events = self.events[since:]
        wanted = SITE_FUNCTIONS[site]
        for e in events:
            for w in [e, *e.get("warnings", [])]:
                symbol = demangle(w.get("symbol", "")) or w.get("function", "")
                if w.get("rule") and any(part in symbol for part in wanted):
                    return f"{w['rule']} {w.get('message', '')[:140]}"
        return None

    def false_not_runs(self, outcomes: list[Outcome]) -> None:
        """Each `new` outcome whose site a not-run of its patch names becomes `false-not-run`."""
        with self.cv:
            not_run = [e for e in self.events if e["event"] == "not-run"]
        for o in outcomes:
            if o.result != "new":
                continue
            wanted = SITE_FUNCTIONS[o.site]
            for e in not_run:
                named = [f for f in e["functions"] if any(part in f for part in wanted)]
                if e["seq"] == o.seq and named:
                    o.result, o.detail = "false-not-run", f"HL1013 on {named} though its new output appeared"

    def edit(self) -> Outcome:
        site = self.plan.pop(0) if self.plan else self.rng.choice(self.sites)
        self.gens[site] += 1
        g = self.gens[site]
        constant = self._constants()[site]
        self._save()
        mark, since = len(self.lines), len(self.events)
        outcome = self.session.patch()

        def judged(result: str, detail: str = "") -> Outcome:
            return Outcome(self.opt, site, g, result, detail, outcome.event.get("seq"))

        if outcome.kind == "patch-refused":
            self.gens[site] -= 1  # the app runs the last good code
            self._save()
            self.session.patch()
            return judged(
                "named", f"refused {outcome.event.get('rule')}: {outcome.event.get('reason', '')[:160]}"
            )
        if outcome.kind != "patched":  # an engine error: a product bug, counted as wrong
            self.accepted[site].add(constant)  # the file keeps the edit: a later patch brings it
            return judged("wrong", f"{outcome.kind}: {str(outcome.event)[:200]}")
        self.accepted[site].add(constant)
        arrived = self.wait(
            lambda s: (
                s.startswith(f"S{site} ")
                and int(s.split("v=")[1]) - int(s.split("b=")[1].split()[0]) == constant
            ),
            3.0,
            mark,
        )
        if not arrived:
            time.sleep(3.5)  # events that come later: not run since the patch (receipts)
        problem = self.wrong()
        if self.exited():
            return judged("crash", str(self.exited()[0]))
        if problem:
            return judged("wrong", problem)
        if arrived:
            return judged("new")
        named = self.named(site, since)
        if named:
            return judged("named", named)
        warned = [(w.get("rule"), demangle(w.get("symbol", ""))) for w in outcome.event.get("warnings", [])]
        return judged("silent", f"functions {outcome.event.get('functions')} warnings {warned}")


def cached_folder(opt: int) -> Path:
    """Where the programs with dependencies at `opt` are built, one after another: a folder
    kept across runs (and across this checkout's tests and bench), so that rayon and tokio
    are built once per opt-level and each program rebuilds only its own crate."""
    checkout = hashlib.sha256(str(LOCK.parent.parent).encode()).hexdigest()[:10]
    return Path.home() / ".cache" / "hotline-tests" / f"receipt-corpus-{checkout}" / f"opt{opt}"


def run_app(
    folder: Path, opt: int, seed: int, edits: int, deps: bool = False, plan: list[str] | None = None
) -> list[Outcome]:
    app = ReceiptApp(folder, opt, random.Random(seed), deps, plan)
    app.session.start()
    try:
        if not app.wait(lambda s: s.startswith("Sinit "), 600.0 if deps else 60.0, 0):
            return [Outcome(opt, "-", 0, "crash", f"no output: {app.lines[-5:]}")]
        out = []
        for _ in range(edits):
            out.append(app.edit())
            if out[-1].result == "crash":
                break
        else:
            time.sleep(NOT_RUN_AFTER + 0.5)  # the last patches' receipts
            app.false_not_runs(out)
        return out
    finally:
        app.session.stop()
