//! The runtime's side of the quiet stop: the engine holds every other thread with ptrace
//! and writes the entry jumps (`server/hotline/engine/app/thread_stop.py`); this thread, which
//! the engine leaves running, makes the cores serialize before the held threads resume.
//!
//! The exchange, after the patch is mapped (`schemas/channel-jumps-*.schema.json`):
//! 1. `jumps-ready` (app -> engine): this thread's id (not to be held), and the signal
//!    restorers, the return addresses by which the engine finds signal frames on stacks.
//! 2. The engine holds the threads, writes, and sends `sync-core`. Between sending 1 and
//!    answering 2 this thread does not allocate or lock (a held thread may own the malloc
//!    lock): it reads into a stack buffer, calls membarrier and writes a constant.
//! 3. `synced` (app -> engine): membarrier(PRIVATE_EXPEDITED_SYNC_CORE) has returned, so
//!    every thread of the process executes a core serializing instruction before it runs
//!    user code again (the Intel SDM's cross-modifying-code protocol). Then the engine
//!    releases the threads.
//! 4. `jumps-written` (engine -> app): what was written, what was busy, or that the engine
//!    could not hold the threads (`stop: "signal"`), and then `jumps.rs` writes them with
//!    the signal stop instead.

use crate::json::{self, quote, Value};
use crate::jumps::{self, Report};
use crate::sys;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

/// The longest `sync-core` line accepted.
const SYNC_LINE: usize = 128;
const SYNCED: &[u8] = b"{\"type\":\"synced\"}\n";

/// The channel, as the exchange needs it.
pub struct Link<'a> {
    pub reader: &'a mut BufReader<UnixStream>,
    pub token: &'a str,
    pub build_id: &'a str,
}

/// Registers for membarrier's core serialization and lets any process of this user trace
/// this one (needed under Yama's ptrace_scope 1 by an engine that is not the app's parent).
/// Failures only mean the engine falls back, or that Yama is absent.
pub fn prepare() {
    let _ = sys::allow_any_tracer();
    SYNC_CORE.store(
        sys::membarrier_register_sync_core().is_ok(),
        std::sync::atomic::Ordering::Relaxed,
    );
}

static SYNC_CORE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the engine may hold the threads: without membarrier's core serialization the
/// resumed threads could run stale prefetched bytes, so the signal stop is used.
pub fn available() -> bool {
    SYNC_CORE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Has the engine write `jumps` (validated by the loader) with every other thread held.
pub fn write(link: &mut Link, seq: u64, jumps: &[(u64, u64)]) -> Report {
    let restorers: Vec<String> = sys::signal_restorers().iter().map(u64::to_string).collect();
    let ready = format!(
        "{{\"type\":\"jumps-ready\",\"seq\":{seq},\"tid\":{},\"sync_core\":{},\"restorers\":[{}]}}\n",
        sys::gettid(),
        available(),
        restorers.join(",")
    );
    let mut line = [0u8; SYNC_LINE];
    let synced = sync_core(link, ready.as_bytes(), &mut line);
    drop(ready); // only now: freeing may take the malloc lock
    let len = match synced {
        Ok(len) => len,
        Err(why) => return failed(format!("the quiet stop failed: {why}")),
    };
    let expected = format!("{{\"type\":\"sync-core\",\"seq\":{seq}}}");
    if line.get(..len) != Some(expected.as_bytes()) {
        return failed("the engine sent no sync-core for this patch".into());
    }
    let mut written = Vec::new();
    if let Err(e) = link.reader.read_until(b'\n', &mut written) {
        return failed(format!("the engine did not say what it wrote: {e}"));
    }
    match parse_written(link, seq, &written) {
        Ok(Written::Held(report)) => report,
        Ok(Written::NotHeld(why)) => {
            let mut report = jumps::write(jumps);
            report.error = report.error.or(why.map(|w| format!("no quiet stop: {w}")));
            report
        }
        Err(why) => failed(why),
    }
}

/// Sends `ready`, waits for the engine's one short line, serializes every core and
/// answers. Allocates nothing and takes no lock; returns the line's length.
fn sync_core(link: &mut Link, ready: &[u8], line: &mut [u8; SYNC_LINE]) -> Result<usize, String> {
    if !link.reader.buffer().is_empty() {
        return Err("unexpected bytes after the patch message".into());
    }
    let stream = link.reader.get_ref();
    (&*stream).write_all(ready).map_err(|e| e.to_string())?;
    let mut len = 0;
    while !line[..len].ends_with(b"\n") {
        let Some(free) = line.get_mut(len..).filter(|f| !f.is_empty()) else {
            return Err("sync-core line too long".into());
        };
        match (&*stream).read(free) {
            Ok(0) => return Err("the engine closed the channel".into()),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let serialized = !available() || sys::membarrier_sync_core().is_ok();
    (&*stream).write_all(SYNCED).map_err(|e| e.to_string())?;
    if !serialized {
        return Err("membarrier failed".into());
    }
    Ok(len - 1)
}

fn failed(why: String) -> Report {
    Report {
        error: Some(why),
        stop: "ptrace",
        ..Report::default()
    }
}

enum Written {
    /// The engine held the threads: what it wrote.
    Held(Report),
    /// It could not (why, when it knows): the signal stop writes them instead.
    NotHeld(Option<String>),
}

fn parse_written(link: &Link, seq: u64, line: &[u8]) -> Result<Written, String> {
    let text = std::str::from_utf8(line).map_err(|_| "jumps-written is not UTF-8".to_string())?;
    let msg = json::parse(text.trim_end()).map_err(|e| format!("malformed jumps-written: {e}"))?;
    let string = |k: &str| msg.get(k).and_then(Value::as_str);
    if string("type") != Some("jumps-written")
        || string("token") != Some(link.token)
        || string("build_id") != Some(link.build_id)
        || msg.get("seq").and_then(Value::as_u64) != Some(seq)
    {
        return Err(format!(
            "expected jumps-written for patch {seq}, got {}",
            quote(text.trim_end())
        ));
    }
    let error = string("error").map(str::to_string);
    if string("stop") == Some("signal") {
        return Ok(Written::NotHeld(error));
    }
    let sites = |k: &str| -> Vec<u64> {
        msg.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    Ok(Written::Held(Report {
        written: sites("written").len(),
        busy: sites("busy"),
        held: Vec::new(),
        error,
        stop_us: msg.get("stop_us").and_then(Value::as_u64).unwrap_or(0),
        stop: "ptrace",
    }))
}
