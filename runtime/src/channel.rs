//! The app's end of the patch channel: a Unix socket to the engine that launched it.
//!
//! Newline-delimited JSON; the messages are specified in `schemas/`. Every message from
//! the engine must carry this launch's token and build id; anything else is refused
//! with a logged reason and the app keeps running.

use crate::json::{self, quote, Value};
use crate::loader::{self, Patch, Region, Segment};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The largest message the runtime reads; longer lines are refused unread.
pub const MAX_MESSAGE: u64 = 64 << 20;

struct Launch {
    socket: String,
    token: String,
    build_id: String,
}

fn log(msg: &str) {
    eprintln!("[hotline] {msg}");
}

/// Starts the channel thread when the engine's environment is present; otherwise nothing.
pub fn start_if_launched_by_engine() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(socket), Some(token), Some(build_id)) = (
        var("HOTLINE_SOCKET"),
        var("HOTLINE_TOKEN"),
        var("HOTLINE_BUILD_ID"),
    ) else {
        return;
    };
    let launch = Launch {
        socket,
        token,
        build_id,
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
    let anchor = crate::hotline_aslr_anchor() as u64;
    let Some(region) = loader::reserve_region(anchor) else {
        log("cannot reserve address space for patches near the executable; running unattached");
        return;
    };
    let mut last_seq = 0u64;
    let mut warned = false;
    loop {
        match UnixStream::connect(&launch.socket) {
            Ok(stream) => {
                warned = false;
                if let Err(e) = serve(&launch, region, anchor, stream, &mut last_seq) {
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
    anchor: u64,
    stream: UnixStream,
    last_seq: &mut u64,
) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let hello = format!(
        "{{\"type\":\"hello\",\"protocol\":1,\"pid\":{},\"build_id\":{},\"token\":{},\"anchor\":{},\"region\":{{\"start\":{},\"size\":{}}}}}\n",
        std::process::id(),
        quote(&launch.build_id),
        quote(&launch.token),
        anchor,
        region.start,
        region.size
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
        let reply = handle(launch, region, &line, last_seq);
        out.write_all(reply.as_bytes())?;
    }
}

/// Handles one line from the engine and returns the result line to send back.
fn handle(launch: &Launch, region: Region, line: &[u8], last_seq: &mut u64) -> String {
    let started = Instant::now();
    let (seq, outcome) = match parse_patch(launch, line, *last_seq) {
        Err((seq, reason)) => (seq, Err(reason)),
        Ok((seq, patch)) => {
            *last_seq = seq;
            let loaded = loader::load(region, &patch).map(|()| {
                let entries: Vec<(usize, usize)> = patch
                    .table
                    .iter()
                    .map(|&(o, n)| (o as usize, n as usize))
                    .collect();
                crate::table::publish(&entries);
            });
            (seq, loaded)
        }
    };
    let apply_us = started.elapsed().as_micros();
    match outcome {
        Ok(()) => format!("{{\"type\":\"result\",\"seq\":{seq},\"status\":\"applied\",\"apply_us\":{apply_us}}}\n"),
        Err(reason) => {
            log(&format!("refused patch {seq}: {reason}"));
            format!(
                "{{\"type\":\"result\",\"seq\":{seq},\"status\":\"refused\",\"reason\":{},\"apply_us\":{apply_us}}}\n",
                quote(&reason)
            )
        }
    }
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
    let mut table = Vec::new();
    for pair in array("table")? {
        match pair.as_array() {
            Some([old, new]) => {
                table.push((number(old, "table entry")?, number(new, "table entry")?))
            }
            _ => return Err(fail("table entries must be [old, new] pairs".into())),
        }
    }
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
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch {
        Launch {
            socket: String::new(),
            token: "t".repeat(32),
            build_id: "b1".into(),
        }
    }

    fn valid(seq: u64) -> String {
        format!(
            "{{\"type\":\"patch\",\"token\":\"{}\",\"build_id\":\"b1\",\"seq\":{seq},\"image\":\"/x\",\"segments\":[{{\"addr\":4096,\"offset\":0,\"filesz\":1,\"memsz\":1,\"prot\":\"rx\"}}],\"imports\":[{{\"slot\":8192,\"name\":\"puts\"}}],\"eh_frame\":null,\"table\":[[1,4096]]}}",
            "t".repeat(32)
        )
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

    /// xorshift64*: deterministic pseudo-random cases without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
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
        let err = serve(&launch(), region, 1, app, &mut 0).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        writer.join().unwrap();
    }
}
