//! The app's end of the patch channel: a Unix socket to the engine that launched it.
//!
//! Newline-delimited JSON; the messages are specified in `schemas/`. Every message from
//! the engine must carry this launch's token and build id; anything else is refused
//! with a logged reason and the app keeps running.
//!
//! A patch is applied in this order: map it (`loader::load`: segments, imports,
//! protections, unwind tables), write its entry jumps (`jumps::write`), publish its jump
//! table. Once mapped it is applied: entry jumps that cannot be written are reported in
//! the result, not fatal. Each message is handled inside `catch_unwind`, so even a bug
//! that panics becomes a refusal and the channel thread lives on.
//!
//! A `debug-info` message names the debug ELF of an applied patch (`debug.rs`); it is
//! checked like a patch message and answered with a `debug-info-result` line.

use crate::debug;
use crate::json::{self, quote, Value};
use crate::jumps::{self, Report};
use crate::loader::{self, CodeMap, Patch, Region, Segment};
use crate::program::{self, Mode};
use crate::quiet_stop::{self, Link};
use crate::receipts;
use crate::settings::{self, Settings};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The largest message the runtime reads; longer lines are refused unread.
pub const MAX_MESSAGE: u64 = 64 << 20;

type Launch = Settings;

/// Who the runtime tells the engine it is, besides pid, token and build id.
struct Origin {
    mode: Mode,
    /// The runtime address of `hotline_aslr_anchor`: the slide, when linked.
    anchor: u64,
    /// The executable's load bias, when the auxiliary vector gives it: the slide, when injected.
    exe_base: Option<u64>,
}

impl Origin {
    fn hello_fields(&self) -> String {
        let mut fields = format!("\"mode\":{}", quote(self.mode.name()));
        if self.mode == Mode::Linked {
            fields += &format!(",\"anchor\":{}", self.anchor);
        }
        if let Some(base) = self.exe_base {
            fields += &format!(",\"exe_base\":{base}");
        }
        fields
    }
}

/// What outlives a connection to the engine.
struct Applied {
    /// The newest sequence number seen: older and repeated ones are replays.
    last_seq: u64,
    /// Where entry jumps may be written: the program's code and applied patches'.
    code: CodeMap,
    /// Applied patches, for their debug-info messages.
    debug: debug::Registry,
    /// Applied patches' first-call flags, for `receipts` messages.
    receipts: receipts::Flags,
}

fn log(msg: &str) {
    eprintln!("[hotline] {msg}");
}

/// Starts the channel thread when the engine's environment is present; otherwise nothing.
/// Either way the engine's variables leave the environment (`settings.rs`).
pub fn start_if_launched_by_engine() {
    let Some(launch) = settings::take() else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("hotline".into())
        .spawn(move || run(launch));
    if let Err(e) = spawned {
        log(&format!(
            "cannot start the patch thread: {e}; running unattached"
        ));
    }
}

fn run(launch: Launch) {
    quiet_stop::prepare();
    let program = program::main_program();
    let origin = Origin {
        mode: program.map_or(Mode::Linked, |p| p.mode),
        anchor: crate::hotline_aslr_anchor() as u64,
        exe_base: program.map(|p| p.bias),
    };
    // Patches must lie within rel32 reach of the executable's code: near the anchor when
    // linked into it, near its entry point when preloaded.
    let near = match program {
        Some(p) if p.mode == Mode::Injected => p.entry,
        _ => origin.anchor,
    };
    let Some(region) = loader::reserve_region(near) else {
        log("cannot reserve address space for patches near the executable; running unattached");
        return;
    };
    if let Some(dir) = &launch.debug_dir {
        debug::publish_grid(region, dir);
    }
    let mut applied = Applied {
        last_seq: 0,
        code: CodeMap::of_executable(),
        debug: debug::Registry::default(),
        receipts: receipts::Flags::default(),
    };
    let mut warned = false;
    loop {
        match UnixStream::connect(&launch.socket) {
            Ok(stream) => {
                warned = false;
                if let Err(e) = serve(&launch, region, &origin, stream, &mut applied) {
                    log(&format!(
                        "engine connection ended: {e}; running unattached, will reconnect"
                    ));
                }
            }
            Err(e) if !warned => {
                log(&format!(
                    "cannot reach the engine at {}: {e}; running unattached",
                    launch.socket
                ));
                warned = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn serve(
    launch: &Launch,
    region: Region,
    origin: &Origin,
    stream: UnixStream,
    applied: &mut Applied,
) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let hello = format!(
        "{{\"type\":\"hello\",\"protocol\":1,\"pid\":{},\"build_id\":{},\"token\":{},{},\"region\":{{\"start\":{},\"size\":{}}},\"last_seq\":{}}}\n",
        std::process::id(),
        quote(&launch.build_id),
        quote(&launch.token),
        origin.hello_fields(),
        region.start,
        region.size,
        applied.last_seq
    );
    out.write_all(hello.as_bytes())?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(MAX_MESSAGE + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "engine closed the channel",
            ));
        }
        if line.last() != Some(&b'\n') {
            if n as u64 > MAX_MESSAGE {
                log(&format!(
                    "refused a message longer than {MAX_MESSAGE} bytes; closing the channel"
                ));
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "oversized message",
                ));
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "truncated message",
            ));
        }
        let mut link = Link {
            reader: &mut reader,
            token: &launch.token,
            build_id: &launch.build_id,
        };
        let reply = handle(launch, region, &line, applied, Some(&mut link));
        out.write_all(reply.as_bytes())?;
    }
}

/// Handles one line from the engine and returns the result line to send back.
fn handle(
    launch: &Launch,
    region: Region,
    line: &[u8],
    applied: &mut Applied,
    link: Option<&mut Link>,
) -> String {
    match message_type(line).as_deref() {
        Some("debug-info") => return handle_debug_info(launch, line, applied),
        Some("receipts") => {
            return guarded("reading receipts", || {
                Ok(receipts::handle(
                    &launch.token,
                    &launch.build_id,
                    line,
                    &applied.receipts,
                ))
            })
            .unwrap_or_else(|why| {
                format!(
                    "{{\"type\":\"receipts-result\",\"status\":\"refused\",\"reason\":{}}}\n",
                    quote(&why)
                )
            })
        }
        _ => {}
    }
    let started = Instant::now();
    let parsed = guarded("reading the message", || {
        Ok(parse_patch(launch, line, applied.last_seq))
    });
    let (seq, outcome) = match parsed {
        Err(reason) => (0, Err(reason)),
        Ok(Err((seq, reason))) => (seq, Err(reason)),
        Ok(Ok((seq, patch))) => {
            applied.last_seq = seq;
            let outcome = guarded("applying the patch", || {
                apply(region, seq, &patch, &mut applied.code, link)
            });
            if outcome.is_ok() {
                applied.debug.note_applied(seq, &patch);
                applied.receipts.note_applied(seq, &patch);
            }
            (seq, outcome)
        }
    };
    let apply_us = started.elapsed().as_micros();
    match outcome {
        Ok((jumps, problems)) => {
            let problems: Vec<String> = problems.iter().map(|p| quote(p)).collect();
            format!(
                "{{\"type\":\"result\",\"seq\":{seq},\"status\":\"applied\",\"apply_us\":{apply_us},\"entry_jumps\":{},\"self_check\":[{}]}}\n",
                jumps.to_json(),
                problems.join(",")
            )
        }
        Err(reason) => {
            log(&format!("refused patch {seq}: {reason}"));
            format!(
                "{{\"type\":\"result\",\"seq\":{seq},\"status\":\"refused\",\"reason\":{},\"apply_us\":{apply_us}}}\n",
                quote(&reason)
            )
        }
    }
}

/// The `type` of a JSON message, if it is an object with a string `type`.
fn message_type(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let msg = json::parse(text.trim_end()).ok()?;
    msg.get("type").and_then(Value::as_str).map(str::to_string)
}

/// Registers the debug ELF of an applied patch; answers with a `debug-info-result` line.
fn handle_debug_info(launch: &Launch, line: &[u8], applied: &mut Applied) -> String {
    let outcome = guarded("registering debug info", || {
        Ok(parse_debug_info(launch, line).and_then(|(seq, path)| {
            applied
                .debug
                .register(seq, &path)
                .map(|()| seq)
                .map_err(|why| (seq, why))
        }))
    })
    .unwrap_or_else(|why| Err((0, why)));
    match outcome {
        Ok(seq) => {
            format!("{{\"type\":\"debug-info-result\",\"seq\":{seq},\"status\":\"registered\"}}\n")
        }
        Err((seq, reason)) => {
            log(&format!("refused debug info of patch {seq}: {reason}"));
            format!(
                "{{\"type\":\"debug-info-result\",\"seq\":{seq},\"status\":\"refused\",\"reason\":{}}}\n",
                quote(&reason)
            )
        }
    }
}

fn parse_debug_info(launch: &Launch, line: &[u8]) -> Result<(u64, String), Refusal> {
    let text = std::str::from_utf8(line).map_err(|_| (0, "message is not UTF-8".to_string()))?;
    let msg = json::parse(text.trim_end()).map_err(|e| (0, format!("malformed message: {e}")))?;
    let seq = msg.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let string = |k: &str| {
        msg.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| (seq, format!("field {k:?} must be a string")))
    };
    if string("token")? != launch.token {
        return Err((
            seq,
            "wrong token: this message does not come from the engine that launched the app".into(),
        ));
    }
    if string("build_id")? != launch.build_id {
        return Err((
            seq,
            format!("debug info is for build {:?}", string("build_id")?),
        ));
    }
    if msg.get("seq").and_then(Value::as_u64).is_none() {
        return Err((seq, "seq must be a non-negative integer".into()));
    }
    Ok((seq, string("path")?.to_string()))
}

/// Maps the patch, points the old entries at the new code, then publishes the jump table.
/// Once mapped the patch is applied: entry jumps that cannot be written are only reported.
fn apply(
    region: Region,
    seq: u64,
    patch: &Patch,
    code: &mut CodeMap,
    link: Option<&mut Link>,
) -> Result<(Report, Vec<String>), String> {
    loader::load(region, patch, code)?;
    code.add_patch(patch);
    let report = match link {
        Some(link) if patch.stop_by_engine && !patch.entry_jumps.is_empty() => {
            quiet_stop::write(link, seq, &patch.entry_jumps)
        }
        _ => jumps::write(&patch.entry_jumps),
    };
    if let Some(error) = &report.error {
        log(&format!("entry jumps: {error}"));
    }
    let entries: Vec<(usize, usize)> = patch
        .table
        .iter()
        .map(|&(o, n)| (o as usize, n as usize))
        .collect();
    crate::table::publish(&entries);
    let problems = self_check(patch, &entries, &report);
    Ok((report, problems))
}

/// Reads back what the patch was to change: every table entry names its new address, and
/// every entry jump reported written is in place. A mismatch goes to the engine, which
/// then does not report the patch as applied.
fn self_check(patch: &Patch, entries: &[(usize, usize)], report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    let stale = entries
        .iter()
        .filter(|&&(old, new)| crate::table::current(old) != Some(new))
        .count();
    if stale > 0 {
        problems.push(format!(
            "{stale} of {} jump table entries do not point at the new code",
            entries.len()
        ));
    }
    let in_place = jumps::in_place(&patch.entry_jumps);
    if in_place != report.written {
        problems.push(format!(
            "{in_place} entry jumps are in place, but {} were written",
            report.written
        ));
    }
    problems
}

/// Runs `f`, turning a panic into a refusal: a bad message must never take the channel
/// thread (and with it hot reloading) down. The second line of defence, behind checked
/// validation.
fn guarded<T>(doing: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!(
            "internal error in the runtime while {doing} (panic: {what}); the app runs on"
        ))
    })
}

type Refusal = (u64, String);

fn parse_patch(launch: &Launch, line: &[u8], last_seq: u64) -> Result<(u64, Patch), Refusal> {
    let text = std::str::from_utf8(line).map_err(|_| (0, "message is not UTF-8".to_string()))?;
    let msg = json::parse(text.trim_end()).map_err(|e| (0, format!("malformed message: {e}")))?;
    let seq = msg.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let fail = |why: String| (seq, why);
    let field = |k: &str| {
        msg.get(k)
            .ok_or_else(|| fail(format!("missing field {k:?}")))
    };
    let string = |k: &str| {
        field(k)?
            .as_str()
            .ok_or_else(|| fail(format!("field {k:?} must be a string")))
    };
    let number = |v: &Value, what: &str| {
        v.as_u64()
            .ok_or_else(|| fail(format!("{what} must be a non-negative integer")))
    };
    if string("type")? != "patch" {
        return Err(fail("unknown message type".into()));
    }
    if string("token")? != launch.token {
        return Err(fail(
            "wrong token: this patch does not come from the engine that launched the app".into(),
        ));
    }
    if string("build_id")? != launch.build_id {
        return Err(fail(format!(
            "patch is for build {:?}, this app is build {:?}",
            string("build_id")?,
            launch.build_id
        )));
    }
    let seq = number(field("seq")?, "seq")?;
    if seq <= last_seq {
        return Err(fail(format!(
            "patch {seq} was already seen (replayed or out of order; last was {last_seq})"
        )));
    }
    let array = |k: &str| {
        field(k)?
            .as_array()
            .ok_or_else(|| fail(format!("field {k:?} must be an array")))
    };
    let mut segments = Vec::new();
    for s in array("segments")? {
        let n = |k: &str| number(s.get(k).unwrap_or(&Value::Null), &format!("segment {k}"));
        let prot = s
            .get("prot")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("segment prot must be a string".into()))?;
        segments.push(Segment {
            addr: n("addr")?,
            offset: n("offset")?,
            filesz: n("filesz")?,
            memsz: n("memsz")?,
            prot: prot.into(),
        });
    }
    let mut imports = Vec::new();
    for i in array("imports")? {
        let slot = number(i.get("slot").unwrap_or(&Value::Null), "import slot")?;
        let name = i
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("import name must be a string".into()))?;
        imports.push((slot, name.to_string()));
    }
    let pairs = |k: &str, what: &str| {
        let mut out = Vec::new();
        for pair in array(k)? {
            match pair.as_array() {
                Some([a, b]) => out.push((number(a, what)?, number(b, what)?)),
                _ => return Err(fail(format!("{what} entries must be pairs of integers"))),
            }
        }
        Ok(out)
    };
    let table = pairs("table", "jump table")?;
    let entry_jumps = pairs("entry_jumps", "entry jump")?;
    let stop_by_engine = match msg.get("stop") {
        None => false,
        Some(v) => match v.as_str() {
            Some("engine") => true,
            Some("runtime") => false,
            _ => return Err(fail("stop must be \"engine\" or \"runtime\"".into())),
        },
    };
    let eh_frame = match msg.get("eh_frame") {
        None | Some(Value::Null) => None,
        Some(v) => Some(number(v, "eh_frame")?),
    };
    Ok((
        seq,
        Patch {
            image: string("image")?.to_string(),
            segments,
            imports,
            eh_frame,
            table,
            entry_jumps,
            stop_by_engine,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn launch() -> Launch {
        Launch {
            socket: String::new(),
            token: "t".repeat(32),
            build_id: "b1".into(),
            debug_dir: None,
        }
    }

    fn valid(seq: u64) -> String {
        format!(
            "{{\"type\":\"patch\",\"token\":\"{}\",\"build_id\":\"b1\",\"seq\":{seq},\"image\":\"/x\",\"segments\":[{{\"addr\":4096,\"offset\":0,\"filesz\":1,\"memsz\":1,\"prot\":\"rx\"}}],\"imports\":[{{\"slot\":8192,\"name\":\"puts\"}}],\"eh_frame\":null,\"table\":[[1,4096]],\"entry_jumps\":[[4096,8192]]}}",
            "t".repeat(32)
        )
    }

    #[test]
    fn the_hello_names_the_mode_and_what_gives_the_slide_in_it() {
        let mut origin = Origin {
            mode: Mode::Linked,
            anchor: 4096,
            exe_base: Some(0),
        };
        assert_eq!(
            origin.hello_fields(),
            r#""mode":"linked","anchor":4096,"exe_base":0"#
        );
        origin.mode = Mode::Injected;
        origin.exe_base = Some(0x5555_0000_0000);
        assert_eq!(
            origin.hello_fields(),
            r#""mode":"injected","exe_base":93823560581120"#
        );
    }

    #[test]
    fn accepts_a_well_formed_patch_and_refuses_foreign_ones() {
        assert!(parse_patch(&launch(), valid(1).as_bytes(), 0).is_ok());
        let wrong_token = valid(1).replace(&"t".repeat(32), &"u".repeat(32));
        assert!(parse_patch(&launch(), wrong_token.as_bytes(), 0)
            .unwrap_err()
            .1
            .contains("wrong token"));
        let other_build = valid(1).replace("\"b1\"", "\"b2\"");
        assert!(parse_patch(&launch(), other_build.as_bytes(), 0)
            .unwrap_err()
            .1
            .contains("build"));
        assert!(parse_patch(&launch(), valid(3).as_bytes(), 3)
            .unwrap_err()
            .1
            .contains("already seen"));
    }

    #[test]
    fn survives_thousands_of_truncated_mutated_and_random_messages() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let base = valid(7).into_bytes();
        let tokens: [&[u8]; 10] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b"\\u",
            b",",
            b"-1",
            b"1e999",
            &[0xff, 0xfe],
        ];
        for case in 0..20_000 {
            let mut msg = base.clone();
            match case % 4 {
                0 => msg.truncate(rng.below(base.len())),
                1 => {
                    for _ in 0..1 + rng.below(8) {
                        let at = rng.below(msg.len());
                        msg[at] = rng.next() as u8;
                    }
                }
                2 => {
                    let at = rng.below(msg.len());
                    let insert = tokens[rng.below(tokens.len())];
                    msg.splice(at..at, insert.iter().copied());
                }
                _ => msg = (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            }
            // Must return (Ok or a refusal), never panic.
            let _ = parse_patch(&launch(), &msg, 0);
        }
    }

    #[test]
    fn refuses_an_oversized_message_without_reading_it_all() {
        let (engine, app) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            let mut engine = engine;
            let mut reader = BufReader::new(engine.try_clone().unwrap());
            let mut hello = String::new();
            reader.read_line(&mut hello).unwrap();
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..=(MAX_MESSAGE >> 20) + 1 {
                if engine.write_all(&chunk).is_err() {
                    break; // the app closed the channel: expected
                }
            }
        });
        let region = Region {
            start: 1 << 40,
            size: 1 << 20,
        };
        let mut applied = Applied {
            last_seq: 0,
            code: CodeMap::of_executable(),
            debug: debug::Registry::default(),
            receipts: receipts::Flags::default(),
        };
        let origin = Origin {
            mode: Mode::Linked,
            anchor: 1,
            exe_base: None,
        };
        let err = serve(&launch(), region, &origin, app, &mut applied).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        writer.join().unwrap();
    }

    #[test]
    fn entry_jumps_are_a_required_list_of_integer_pairs() {
        let (_, patch) = parse_patch(&launch(), valid(1).as_bytes(), 0).unwrap();
        assert_eq!(patch.entry_jumps, [(4096, 8192)]);
        let field = r#","entry_jumps":[[4096,8192]]"#;
        for (replacement, why) in [
            ("", "missing field \"entry_jumps\""),
            (r#","entry_jumps":{}"#, "must be an array"),
            (r#","entry_jumps":[[1]]"#, "must be pairs"),
            (r#","entry_jumps":[[1,2,3]]"#, "must be pairs"),
            (r#","entry_jumps":[[-1,2]]"#, "non-negative integer"),
            (
                r#","entry_jumps":[[1,18446744073709551616]]"#,
                "non-negative integer",
            ),
        ] {
            let msg = valid(1).replace(field, replacement);
            let err = parse_patch(&launch(), msg.as_bytes(), 0).unwrap_err().1;
            assert!(err.contains(why), "{err:?} does not say {why:?}");
        }
    }

    #[test]
    fn a_panic_while_handling_a_message_becomes_a_refusal() {
        let refusal = guarded("testing", || -> Result<(), String> { panic!("boom") });
        let reason = refusal.unwrap_err();
        assert!(reason.contains("while testing (panic: boom)"), "{reason}");
        assert_eq!(guarded("testing", || Ok(5)), Ok(5));
    }

    #[inline(never)]
    extern "C" fn answer() -> u32 {
        std::hint::black_box(41)
    }

    #[test]
    fn an_applied_patch_reports_its_entry_jumps_and_a_refused_one_writes_nothing() {
        let _serial = crate::stop::tests::serial();
        let region = loader::reserve_region(crate::hotline_aslr_anchor() as u64).unwrap();
        let image = std::env::temp_dir().join(format!("hotline-handle-{}.img", std::process::id()));
        std::fs::write(&image, [0xb8, 42, 0, 0, 0, 0xc3]).unwrap(); // mov eax, 42; ret
        let stored: extern "C" fn() -> u32 = std::hint::black_box(answer);
        let site = answer as *const () as u64;
        let message = |seq: u64, target: u64| {
            valid(seq)
                .replace(
                    "\"image\":\"/x\"",
                    &format!("\"image\":{}", quote(&image.to_string_lossy())),
                )
                .replace("\"addr\":4096,", &format!("\"addr\":{},", region.start))
                .replace("\"filesz\":1,\"memsz\":1", "\"filesz\":6,\"memsz\":4096")
                .replace(
                    "\"imports\":[{\"slot\":8192,\"name\":\"puts\"}]",
                    "\"imports\":[]",
                )
                .replace("[[1,4096]]", "[]")
                .replace("[[4096,8192]]", &format!("[[{site},{target}]]"))
        };
        let mut applied = Applied {
            last_seq: 0,
            code: CodeMap::of_executable(),
            debug: debug::Registry::default(),
            receipts: receipts::Flags::default(),
        };
        let outside = handle(
            &launch(),
            region,
            message(1, site).as_bytes(),
            &mut applied,
            None,
        );
        assert!(outside.contains("\"status\":\"refused\""), "{outside}");
        assert!(
            outside.contains("points outside the patch's code"),
            "{outside}"
        );
        assert_eq!(stored(), 41);
        let reply = handle(
            &launch(),
            region,
            message(2, region.start).as_bytes(),
            &mut applied,
            None,
        );
        std::fs::remove_file(&image).unwrap();
        let result = json::parse(reply.trim_end()).unwrap();
        assert_eq!(
            result.get("status").and_then(Value::as_str),
            Some("applied"),
            "{reply}"
        );
        let jumps = result.get("entry_jumps").unwrap();
        assert_eq!(
            jumps.get("written").and_then(Value::as_u64),
            Some(1),
            "{reply}"
        );
        assert_eq!(jumps.get("busy").and_then(Value::as_array), Some(&[][..]));
        assert_eq!(jumps.get("error"), Some(&Value::Null));
        assert!(jumps.get("stop_us").and_then(Value::as_u64).is_some());
        assert_eq!(
            result.get("self_check").and_then(Value::as_array),
            Some(&[][..])
        );
        assert_eq!(stored(), 42);
    }

    #[test]
    fn the_self_check_reports_an_entry_jump_that_is_not_in_place_and_a_stale_table_entry() {
        // `answer`'s entry holds its own code, not a jump: claimed written, it is caught.
        let site = answer as *const () as u64;
        let patch = Patch {
            entry_jumps: vec![(site, site + 64)],
            ..Patch::default()
        };
        let report = Report {
            written: 1,
            ..Report::default()
        };
        let problems = self_check(&patch, &[(0x10, 0x20)], &report);
        assert_eq!(
            problems,
            [
                "1 of 1 jump table entries do not point at the new code",
                "0 entry jumps are in place, but 1 were written"
            ]
        );
    }
}
