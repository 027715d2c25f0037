//! Receipts: which patched functions have run since their patch.
//!
//! The engine's patch linker puts a one-byte flag per new function copy in the patch's rw
//! segment, and a preamble in front of the copy that sets it on the first call (the
//! engine's `first_call_stubs.py`). The runtime only reads the flags when asked: a
//! `receipts` message names, per applied patch, where its flags are and how many; the
//! answer is one `receipts-result` line with a `0`/`1` string per patch. Every flag must
//! lie in an rw segment of the patch it is asked for, so nothing else is ever read.

use crate::json::{self, quote, Value};
use crate::loader::Patch;

/// Applied patches' writable segments, where their flags live: (seq, [start, end)).
#[derive(Debug, Default)]
pub struct Flags {
    writable: Vec<(u64, u64, u64)>,
}

impl Flags {
    pub fn note_applied(&mut self, seq: u64, patch: &Patch) {
        for s in patch.segments.iter().filter(|s| s.prot == "rw") {
            if let Some(end) = s.addr.checked_add(s.memsz) {
                self.writable.push((seq, s.addr, end));
            }
        }
    }

    /// `count` flags from `start`, as `0` (not run) and `1` (ran), if they lie in patch `seq`.
    pub fn read(&self, seq: u64, start: u64, count: u64) -> Result<String, String> {
        let end = start
            .checked_add(count)
            .ok_or_else(|| format!("the flags of patch {seq} overflow the address space"))?;
        if !self
            .writable
            .iter()
            .any(|&(s, lo, hi)| s == seq && start >= lo && end <= hi)
        {
            return Err(format!(
                "the flags of patch {seq} do not lie in its writable memory (or it was not applied)"
            ));
        }
        Ok((start..end)
            .map(|at| {
                // SAFETY: [start, end) lies inside a rw segment the loader mapped for patch
                // `seq` (checked above), and patch memory is never unmapped. The preambles of
                // other threads store to these bytes (a plain byte store, atomic on x86-64),
                // so each is read as an atomic; AtomicU8 has u8's size and alignment.
                let flag = unsafe { &*(at as *const std::sync::atomic::AtomicU8) };
                if flag.load(std::sync::atomic::Ordering::Relaxed) != 0 {
                    '1'
                } else {
                    '0'
                }
            })
            .collect())
    }
}

/// Answers one `receipts` message (already known to be of that type).
pub fn handle(token: &str, build_id: &str, line: &[u8], flags: &Flags) -> String {
    match read_all(token, build_id, line, flags) {
        Ok(patches) => format!(
            "{{\"type\":\"receipts-result\",\"status\":\"read\",\"patches\":[{}]}}\n",
            patches.join(",")
        ),
        Err(reason) => format!(
            "{{\"type\":\"receipts-result\",\"status\":\"refused\",\"reason\":{}}}\n",
            quote(&reason)
        ),
    }
}

fn read_all(
    token: &str,
    build_id: &str,
    line: &[u8],
    flags: &Flags,
) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "message is not UTF-8".to_string())?;
    let msg = json::parse(text.trim_end()).map_err(|e| format!("malformed message: {e}"))?;
    let string = |k: &str| msg.get(k).and_then(Value::as_str);
    if string("token") != Some(token) {
        return Err(
            "wrong token: this message does not come from the engine that launched the app".into(),
        );
    }
    if string("build_id") != Some(build_id) {
        return Err(format!("receipts asked for build {:?}", string("build_id")));
    }
    let patches = msg
        .get("patches")
        .and_then(Value::as_array)
        .ok_or("field \"patches\" must be an array")?;
    let mut out = Vec::new();
    for p in patches {
        let n = |k: &str| {
            p.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("patch {k} must be a non-negative integer"))
        };
        let (seq, start, count) = (n("seq")?, n("flags")?, n("count")?);
        out.push(format!(
            "{{\"seq\":{seq},\"ran\":{}}}",
            quote(&flags.read(seq, start, count)?)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::Segment;

    fn flags_at(bytes: &'static [u8]) -> (Flags, u64) {
        let start = bytes.as_ptr() as u64;
        let patch = Patch {
            segments: vec![Segment {
                addr: start,
                offset: 0,
                filesz: 0,
                memsz: bytes.len() as u64,
                prot: "rw".into(),
            }],
            ..Patch::default()
        };
        let mut flags = Flags::default();
        flags.note_applied(3, &patch);
        (flags, start)
    }

    #[test]
    fn reads_the_flags_of_an_applied_patch_and_nothing_outside_it() {
        let (flags, start) = flags_at(&[0, 1, 1, 0]);
        let msg = |seq: u64, at: u64, count: u64| {
            format!("{{\"type\":\"receipts\",\"token\":\"t\",\"build_id\":\"b\",\"patches\":[{{\"seq\":{seq},\"flags\":{at},\"count\":{count}}}]}}")
        };
        assert_eq!(
            handle("t", "b", msg(3, start, 4).as_bytes(), &flags),
            "{\"type\":\"receipts-result\",\"status\":\"read\",\"patches\":[{\"seq\":3,\"ran\":\"0110\"}]}\n"
        );
        for (seq, at, count) in [
            (3, start, 5),
            (3, start - 1, 1),
            (2, start, 1),
            (3, u64::MAX, 2),
        ] {
            let answer = handle("t", "b", msg(seq, at, count).as_bytes(), &flags);
            assert!(answer.contains("\"status\":\"refused\""), "{answer}");
        }
        let foreign = handle("u", "b", msg(3, start, 1).as_bytes(), &flags);
        assert!(foreign.contains("wrong token"), "{foreign}");
    }
}
