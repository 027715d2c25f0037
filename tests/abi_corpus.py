"""Generated programs for the ABI check (issue 24): random edits of what a function's
callers see, each patched while a loop holds old frames and old values.

One program per *kind* of edit, built at an opt-level, and edited generation by
generation (a generation is one random variant of the edited region, one patch):
- `captures`: an `impl Fn` whose closure captures other values (count, types);
- `iterator`: the concrete type behind an `impl Iterator` return (adapters, captures);
- `generic`: the generic argument of a returned `Vec<T>`;
- `enum`: a crate enum returned by value (variants and payloads) or only its values;
- `future`: an `async fn` whose future holds other locals across an await.

Every generated value is made from *captured or stored* data by code whose text is the
same in every generation (the generation's constants are values, not code), and carries
its generation `g` (`v = rest + g * 1_000_000`). So each printed value has exactly one
right answer, whatever mix of old and new code computed it, and the checker knows it:
- `F` lines: a fresh value made by `step`, which the loop calls (new code may run);
- `D` lines: made by the loop in `main` itself (its frame is old for ever);
- `H`/`B`/`W` lines: values made before the first patch (held by `main`, boxed behind a
  trait object, a future suspended across an await) and used after it.

An edit's outcome is one of: `new` (patched, and `F` lines of the new generation came),
`named` (patched with a warning naming a function, or refused with a rule id), `silent`
(patched, no warning, no new output), `crash` or `wrong` (a value that no code could
have computed). The issue asks for no `crash` and no `wrong` in at least 200 cases.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hotline.engine.session import Session

MARK = 1_000_000
INT_TYPES = ["u8", "u16", "u32", "u64", "i32"]

EXECUTOR = """use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

fn waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

/// Pending once, then ready: a future suspended across it keeps its locals.
struct Yield(bool);
impl Future for Yield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

fn poll_once<F: Future>(f: Pin<&mut F>) -> Option<F::Output> {
    match f.poll(&mut Context::from_waker(&waker())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = Box::pin(f);
    loop {
        if let Some(v) = poll_once(f.as_mut()) {
            return v;
        }
    }
}
"""

PRELUDE = (
    EXECUTOR
    + """
/// A value the generic kind can hold: made from, and summed back to, a u64.
trait Num: Copy {
    fn mk(v: u64) -> Self;
    fn total(&self) -> u64;
}
impl Num for u32 {
    fn mk(v: u64) -> Self { v as u32 }
    fn total(&self) -> u64 { *self as u64 }
}
impl Num for u64 {
    fn mk(v: u64) -> Self { v }
    fn total(&self) -> u64 { *self }
}
impl Num for i64 {
    fn mk(v: u64) -> Self { v as i64 }
    fn total(&self) -> u64 { *self as u64 }
}
impl Num for (u16, u32) {
    fn mk(v: u64) -> Self { ((v % 7) as u16, (v - v % 7) as u32) }
    fn total(&self) -> u64 { self.0 as u64 + self.1 as u64 }
}
impl Num for (u32, u8) {
    fn mk(v: u64) -> Self { ((v - v % 5) as u32, (v % 5) as u8) }
    fn total(&self) -> u64 { self.0 as u64 + self.1 as u64 }
}
impl Num for [u32; 2] {
    fn mk(v: u64) -> Self { [(v / 2) as u32, (v - v / 2) as u32] }
    fn total(&self) -> u64 { self[0] as u64 + self[1] as u64 }
}
fn total<T: Num>(v: &[T]) -> u64 {
    v.iter().map(|x| x.total()).sum()
}

fn say(line: String) {
    println!("{line}");
    std::io::stdout().flush().unwrap();
}
"""
)


def _captures(rng: random.Random, count: int) -> list[tuple[str, str, int]]:
    return [(f"c{i}", rng.choice(INT_TYPES), rng.randint(1, 120)) for i in range(count)]


def _lets(captures: list[tuple[str, str, int]]) -> str:
    return "".join(f"    let {name}: {ty} = {value};\n" for name, ty, value in captures)


def _sum(captures: list[tuple[str, str, int]]) -> str:
    return "".join(f" + {name} as u64" for name, _, _ in captures)


@dataclass
class Kind:
    """One kind of edit: the program around the edited region, each generation's region,
    and the right answer for every line."""

    name: str
    rng: random.Random
    gens: list[dict] = field(default_factory=list)

    def new_gen(self) -> dict:
        raise NotImplementedError

    def region(self, gen: dict) -> str:
        raise NotImplementedError

    def main(self) -> str:
        raise NotImplementedError

    def expected(self, tag: str, fields: dict[str, int], gen: dict) -> int | None:
        """The right value of a line of `tag` computed by generation `gen`'s code."""
        raise NotImplementedError

    def refused_rule(self, gen: dict, running: dict) -> str | None:
        """The rule that must refuse going from the `running` generation to `gen`."""
        return None

    def source(self, gen: dict) -> str:
        return PRELUDE + "// BEGIN GENERATED\n" + self.region(gen) + "// END GENERATED\n" + self.main()


class Captures(Kind):
    def new_gen(self) -> dict:
        g = len(self.gens)
        return {"g": g, "a": self.rng.randint(1, 50), "caps": _captures(self.rng, self.rng.randint(0, 3))}

    def region(self, gen: dict) -> str:
        caps = gen["caps"]
        return (
            "fn make(n: u64) -> impl Fn(u64) -> u64 {\n"
            f"    let g: u64 = {gen['g']};\n    let a: u64 = {gen['a']};\n{_lets(caps)}"
            f"    move |x| x * a + n{_sum(caps)} + g * {MARK}\n}}\n"
        )

    def main(self) -> str:
        return """
fn step(n: u64) {
    say(format!("F n={n} v={}", make(n)(2)));
}

fn main() {
    let held = make(5);
    let boxed: Box<dyn Fn(u64) -> u64> = Box::new(make(6));
    let mut n = 0;
    loop {
        n += 1;
        step(n);
        say(format!("D n={n} v={}", make(n)(3)));
        say(format!("H n={n} v={}", held(2)));
        say(format!("B n={n} v={}", boxed(2)));
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
}
"""

    def expected(self, tag: str, fields: dict[str, int], gen: dict) -> int | None:
        arg, x = {"F": (fields["n"], 2), "D": (fields["n"], 3), "H": (5, 2), "B": (6, 2)}[tag]
        return x * gen["a"] + arg + sum(v for _, _, v in gen["caps"]) + gen["g"] * MARK


class Iterator(Kind):
    ADAPTERS = ["map", "filter", "rev", "step_by", "skip", "add"]

    def new_gen(self) -> dict:
        adapters: list[str] = []
        for _ in range(self.rng.randint(0, 3)):
            # `rev` needs a double-ended source: `step_by` and `skip` over a u64 range are not
            choices = [a for a in self.ADAPTERS if a != "rev" or not {"step_by", "skip"} & set(adapters)]
            adapters.append(self.rng.choice(choices))
        return {
            "g": len(self.gens),
            "a": self.rng.randint(1, 9),
            "a_ty": self.rng.choice(["u8", "u32", "u64"]),
            "m": self.rng.randint(2, 5),
            "s": self.rng.randint(1, 3),
            "adapters": adapters,
        }

    def region(self, gen: dict) -> str:
        chain = "(0..n % 50 + 3)"
        for adapter in gen["adapters"]:
            chain += {
                "map": ".map(move |x| x * a as u64)",
                "filter": ".filter(move |x| x % m != 0)",
                "rev": ".rev()",
                "step_by": f".step_by({gen['s']})",
                "skip": f".skip({gen['s']})",
                "add": ".map(move |x| x + m)",
            }[adapter]
        return (
            "fn seq(n: u64) -> impl Iterator<Item = u64> + Clone {\n"
            f"    let g: u64 = {gen['g']};\n    let a: {gen['a_ty']} = {gen['a']};\n"
            f"    let m: u64 = {gen['m']};\n"
            f"    let _ = (a, m);\n    {chain}.chain(std::iter::once(g * {MARK}))\n}}\n"
        )

    def main(self) -> str:
        return """
fn step(n: u64) {
    say(format!("F n={n} v={}", seq(n).sum::<u64>()));
}

fn main() {
    let mut held = seq(46).cycle();
    let mut boxed: Box<dyn Iterator<Item = u64>> = Box::new(seq(47).cycle());
    let mut n = 0;
    loop {
        n += 1;
        step(n);
        say(format!("D n={n} v={}", seq(n).sum::<u64>()));
        say(format!("H n={n} v={}", held.next().unwrap()));
        say(format!("B n={n} v={}", boxed.next().unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
}
"""

    @staticmethod
    def items(gen: dict, n: int) -> list[int]:
        xs = list(range(0, n % 50 + 3))
        for adapter in gen["adapters"]:
            if adapter == "map":
                xs = [x * gen["a"] for x in xs]
            elif adapter == "filter":
                xs = [x for x in xs if x % gen["m"] != 0]
            elif adapter == "rev":
                xs = xs[::-1]
            elif adapter == "step_by":
                xs = xs[:: gen["s"]]
            elif adapter == "skip":
                xs = xs[gen["s"] :]
            elif adapter == "add":
                xs = [x + gen["m"] for x in xs]
        return [*xs, gen["g"] * MARK]

    def expected(self, tag: str, fields: dict[str, int], gen: dict) -> int | None:
        if tag in ("F", "D"):
            return sum(self.items(gen, fields["n"]))
        items = self.items(gen, 46 if tag == "H" else 47)
        return items[(fields["n"] - 1) % len(items)]


class Generic(Kind):
    TYPES = ["u32", "u64", "i64", "(u16, u32)", "(u32, u8)", "[u32; 2]"]

    def new_gen(self) -> dict:
        return {"g": len(self.gens), "ty": self.rng.choice(self.TYPES), "a": self.rng.randint(1, 40)}

    def region(self, gen: dict) -> str:
        return (
            f"fn vals(n: u64) -> Vec<{gen['ty']}> {{\n"
            f"    let g: u64 = {gen['g']};\n    let a: u64 = {gen['a']};\n"
            f"    let mut v: Vec<{gen['ty']}> = (0..n % 5 + 2).map(|i| Num::mk(i * a)).collect();\n"
            f"    v.push(Num::mk(g * {MARK}));\n    v\n}}\n"
        )

    def main(self) -> str:
        return """
fn step(n: u64) {
    say(format!("F n={n} v={}", total(&vals(n))));
}

fn main() {
    let held = vals(7);
    let mut n = 0;
    loop {
        n += 1;
        step(n);
        say(format!("D n={n} v={}", total(&vals(n))));
        say(format!("H n={n} v={}", total(&held)));
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
}
"""

    def expected(self, tag: str, fields: dict[str, int], gen: dict) -> int | None:
        n = 7 if tag == "H" else fields["n"]
        return sum(i * gen["a"] for i in range(n % 5 + 2)) + gen["g"] * MARK


class Enum(Kind):
    PAYLOADS = ["u8", "u32", "u64", "(u16, u16)", "i16"]

    def new_gen(self) -> dict:
        if self.gens and self.rng.random() < 0.5:  # only the values change
            variants = self.gens[0]["variants"]  # a change of the enum is always refused
        else:
            variants = [self.rng.choice(self.PAYLOADS) for _ in range(self.rng.randint(1, 3))]
        return {
            "g": len(self.gens),
            "variants": variants,
            "pick": self.rng.randint(0, 2),
            "a": self.rng.randint(1, 90),
        }

    def region(self, gen: dict) -> str:
        variants = gen["variants"]
        decl = "".join(f"    V{i}(u64, {ty}),\n" for i, ty in enumerate(variants))
        arms = "".join(
            f"        Msg::V{i}(g, p) => g * {MARK} + {self._total('p', ty)},\n"
            for i, ty in enumerate(variants)
        )
        i = gen["pick"] % len(variants)
        return (
            f"enum Msg {{\n{decl}}}\n\n"
            f"fn value(m: &Msg) -> u64 {{\n    match m {{\n{arms}    }}\n}}\n\n"
            f"fn msg(n: u64) -> Msg {{\n    let g: u64 = {gen['g']};\n    let a: u64 = {gen['a']};\n"
            f"    Msg::V{i}(g, {self._make('(n % 9 + a)', variants[i])})\n}}\n"
        )

    @staticmethod
    def _total(p: str, ty: str) -> str:
        return f"({p}.0 as u64 + {p}.1 as u64)" if ty.startswith("(") else f"(*{p} as u64)"

    @staticmethod
    def _make(v: str, ty: str) -> str:
        return f"(({v}) as u16, 0u16)" if ty.startswith("(") else f"({v}) as {ty}"

    def main(self) -> str:
        return """
fn step(n: u64) {
    say(format!("F n={n} v={}", value(&msg(n))));
}

fn main() {
    let held = msg(4);
    let mut n = 0;
    loop {
        n += 1;
        step(n);
        say(format!("D n={n} v={}", value(&msg(n))));
        say(format!("H n={n} v={}", value(&held)));
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
}
"""

    def expected(self, tag: str, fields: dict[str, int], gen: dict) -> int | None:
        n = 4 if tag == "H" else fields["n"]
        return gen["g"] * MARK + n % 9 + gen["a"]

    def refused_rule(self, gen: dict, running: dict) -> str | None:
        return "HL1002" if gen["variants"] != running["variants"] else None


class AsyncFuture(Kind):
    def new_gen(self) -> dict:
        return {
            "g": len(self.gens),
            "a": self.rng.randint(1, 30),
            "a_ty": self.rng.choice(["u16", "u32", "u64"]),
            "len": self.rng.randint(0, 4),
        }

    def region(self, gen: dict) -> str:
        return (
            "async fn compute(n: u64) -> u64 {\n"
            f"    let g: u64 = {gen['g']};\n    let a: {gen['a_ty']} = {gen['a']};\n"
            f"    let kept = [n as u32; {gen['len']}];\n"
            "    Yield(false).await;\n"
            f"    n * a as u64 + kept.iter().map(|x| *x as u64).sum::<u64>() + g * {MARK}\n}}\n"
        )

    def main(self) -> str:
        return """
async fn worker() {
    let mut i = 0u64;
    loop {
        let v = compute(i).await;
        say(format!("W n={i} v={v}"));
        i += 1;
        Yield(false).await;
    }
}

fn step(n: u64) {
    say(format!("F n={n} v={}", block_on(compute(n))));
}

fn main() {
    let mut held = Box::pin(worker());
    let mut n = 0;
    loop {
        n += 1;
        step(n);
        let _ = poll_once(held.as_mut());
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
}
"""

    def expected(self, tag: str, fields: dict[str, int], gen: dict) -> int | None:
        n = fields["n"]
        return n * gen["a"] + n * gen["len"] + gen["g"] * MARK


KINDS = {"captures": Captures, "iterator": Iterator, "generic": Generic, "enum": Enum, "future": AsyncFuture}


def check_line(kind: Kind, line: str, accepted: list[int]) -> str | None:
    """Why `line` is a wrong value; None if some generation's code that ran computes it.
    `accepted`: the generations the app has run code of (a value made by an older
    generation's code may still be printed by its old frames)."""
    tag, _, rest = line.partition(" ")
    if tag not in ("F", "D", "H", "B", "W"):
        return None
    try:
        fields = {k: int(v) for k, v in (p.split("=", 1) for p in rest.split())}
    except ValueError:
        return f"unreadable line {line!r}"
    g = fields["v"] // MARK
    if g not in accepted:
        return f"{line!r}: generation {g} never ran"
    if tag in ("H", "B") and g != 0:
        # made before the first patch: its data are generation 0's, whatever code reads it
        return f"{line!r}: a value made before the first patch reports generation {g}"
    want = kind.expected(tag, fields, kind.gens[g])
    if want != fields["v"]:
        return f"{line!r}: generation {g}'s code computes {want}"
    return None


@dataclass
class Outcome:
    kind: str
    opt: int
    gen: int
    result: str  # new | named | silent | crash | wrong
    detail: str = ""


def write_app(folder: Path, kind: Kind, opt: int) -> Path:
    """A cargo package of the kind's program at generation 0, built at `opt`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "src").mkdir(exist_ok=True)
    (folder / "Cargo.toml").write_text(
        f'[package]\nname = "corpus_{kind.name}"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f"[dependencies]\n\n[profile.dev]\nopt-level = {opt}\n"
    )
    kind.gens = [kind.new_gen()]
    save(folder, kind.source(kind.gens[0]))
    return folder


def save(folder: Path, text: str) -> None:
    path = folder / "src" / "main.rs"
    temp = path.with_suffix(".rs.saving")
    temp.write_text(text)
    temp.replace(path)


class CorpusApp:
    """One generated program under a real Session, edited generation by generation."""

    def __init__(self, folder: Path, kind: Kind, opt: int) -> None:
        self.folder, self.kind, self.opt = write_app(folder, kind, opt), kind, opt
        self.lines: list[str] = []
        self.exited: list[dict] = []
        self.accepted = [0]
        self.running = kind.gens[0]
        self.checked = 0
        self.cv = threading.Condition()
        self.session = Session(self.folder, self._on_event)

    def _on_event(self, e: dict) -> None:
        with self.cv:
            if e["event"] == "app-output" and e["stream"] == "stdout":
                self.lines.append(e["line"])
            elif e["event"] == "app-exited":
                self.exited.append(e)
            self.cv.notify_all()

    def wait(self, pred: Callable[[str], bool], timeout: float, after: int = 0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cv:
            while not any(pred(s) for s in self.lines[after:]):
                left = deadline - time.monotonic()
                if left <= 0 or self.exited:
                    return False
                self.cv.wait(left)
            return True

    def wrong(self) -> str | None:
        """The first line since the last call that no generation's code computes."""
        with self.cv:
            lines, self.checked = self.lines[self.checked :], len(self.lines)
        return next((w for s in lines if (w := check_line(self.kind, s, self.accepted))), None)

    def edit(self) -> Outcome:
        """One random edit, patched and judged."""
        gen = self.kind.new_gen()
        self.kind.gens.append(gen)
        save(self.folder, self.kind.source(gen))
        mark = len(self.lines)
        outcome = self.session.patch()
        event, g = outcome.event, gen["g"]

        def judged(result: str, detail: str = "") -> Outcome:
            return Outcome(self.kind.name, self.opt, g, result, detail)

        if outcome.kind == "patch-refused":
            want = self.kind.refused_rule(gen, self.running)
            time.sleep(0.3)
            problem = self.wrong() or (self.exited and f"the app exited: {self.exited[0]}")
            if problem:
                return judged("crash" if self.exited else "wrong", str(problem))
            if want is not None and event.get("rule") != want:
                return judged("wrong", f"refused as {event.get('rule')}, expected {want}: {event}")
            return judged("named", f"refused: {event.get('rule')} {event.get('reason', '')[:160]}")
        if outcome.kind != "patched":
            return judged("wrong", f"unexpected outcome {outcome.kind}: {str(event)[:300]}")
        self.accepted.append(g)
        want = self.kind.refused_rule(gen, self.running)
        self.running = gen
        arrived = self.wait(
            lambda s: s.startswith("F ") and int(s.rsplit("v=", 1)[1]) // MARK == g, 3.0, mark
        )
        time.sleep(0.3)  # old frames and old values keep printing meanwhile
        problem = self.wrong()
        if self.exited:
            return judged("crash", str(self.exited[0]))
        if problem:
            return judged("wrong", problem)
        if want is not None:
            return judged("wrong", f"patched, though {want} should have refused it")
        if arrived:
            return judged("new")
        named = [w for w in event.get("warnings", []) if w.get("symbol")]
        if named:
            return judged("named", "; ".join(f"{w['rule']} {w['message'][:120]}" for w in named[:2]))
        return judged("silent", str(event.get("functions")))


def run_app(folder: Path, kind_name: str, opt: int, seed: int, edits: int) -> list[Outcome]:
    """Builds and launches one generated program, then applies `edits` random edits."""
    kind = KINDS[kind_name](kind_name, random.Random(seed))
    app = CorpusApp(folder, kind, opt)
    app.session.start()
    try:
        if not app.wait(lambda s: s.startswith(("F ", "W ")), 30.0):
            return [Outcome(kind_name, opt, 0, "crash", f"no output: {app.lines[-5:]} {app.exited}")]
        out = []
        for _ in range(edits):
            out.append(app.edit())
            if out[-1].result == "crash":
                break
        return out
    finally:
        app.session.stop()
