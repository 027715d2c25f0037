//! Entry jumps: a 5-byte `jmp rel32` written over the old entry of each replaced function,
//! to its new copy, so code that never passes a safe point (old callers, vtables, stored
//! function pointers, threads that never return to `hotline::call`) runs the new code on
//! its next call.
//!
//! The engine picks the sites statically (the function is long enough, and no branch
//! target or call return lies inside bytes 1..4); the loader has checked every site and
//! target against the code maps. What is left is dynamic: no thread may be in the middle
//! of a window while it changes. So the jumps are written with the world stopped
//! (`stop.rs`); a site a stopped thread is inside of is retried a few times, then skipped
//! and reported busy.

use crate::json::quote;
use crate::stop;
use crate::sys::{self, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};
use std::ffi::{c_int, c_void};
use std::time::Duration;

/// Length of `jmp rel32`: opcode E9 and a 32-bit displacement.
pub const JMP_LEN: u64 = 5;
/// Stops tried before busy sites are given up on.
const TRIES: usize = 5;
/// Pause between tries, so threads inside a window can leave it.
const RETRY_PAUSE: Duration = Duration::from_millis(1);

/// What became of a patch's entry jumps; sent in the result line.
#[derive(Debug, Default)]
pub struct Report {
    /// Sites now jumping to the new code.
    pub written: usize,
    /// Sites skipped because a stopped thread stayed inside their window.
    pub busy: Vec<u64>,
    /// Why writing stopped, or why no jump could be written at all.
    pub error: Option<String>,
    /// Sites held back: a debugger's breakpoint (0xCC) lies in their window, and writing
    /// over it would be undone, or corrupted, when the debugger removes it.
    pub held: Vec<u64>,
    /// Total microseconds the other threads were held stopped.
    pub stop_us: u64,
    /// How they were stopped: "ptrace" (by the engine) or "signal" (`stop.rs`).
    pub stop: &'static str,
}

impl Report {
    pub fn to_json(&self) -> String {
        let list = |sites: &[u64]| {
            sites
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{{\"written\":{},\"busy\":[{}],\"held\":[{}],\"error\":{},\"stop_us\":{},\"stop\":{}}}",
            self.written,
            list(&self.busy),
            list(&self.held),
            self.error.as_deref().map_or("null".into(), quote),
            self.stop_us,
            quote(if self.stop.is_empty() { "signal" } else { self.stop })
        )
    }
}

/// The bytes of `jmp target` placed at `site`, or None if `target` is out of rel32 reach.
pub fn encode(site: u64, target: u64) -> Option<[u8; 5]> {
    let next = site.checked_add(JMP_LEN)?;
    let disp = i32::try_from(i128::from(target) - i128::from(next)).ok()?;
    let [a, b, c, d] = disp.to_le_bytes();
    Some([0xe9, a, b, c, d])
}

/// How many of `jumps` (site, target) now hold `jmp target`: the self-check after a patch.
/// Only sites the loader validated are read.
pub fn in_place(jumps: &[(u64, u64)]) -> usize {
    jumps
        .iter()
        .filter(|&&(site, target)| {
            let Some(expected) = encode(site, target) else {
                return false;
            };
            let mut found = [0u8; 5];
            // SAFETY: the loader checked that [site, site+5) lies in executable code of the
            // program or of an applied patch, which stays mapped and readable (r-x) for the
            // life of the process; a 5-byte copy out of it reads nothing else.
            unsafe { std::ptr::copy_nonoverlapping(site as *const u8, found.as_mut_ptr(), 5) };
            found == expected
        })
        .count()
}

struct Jump {
    site: u64,
    bytes: [u8; 5],
    busy: bool,
    held: bool,
}

/// Whether a debugger traces this process (`TracerPid` in /proc/self/status).
pub fn traced() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .is_some_and(|pid| pid.trim() != "0")
    })
}

/// Whether the window at `site` holds a breakpoint byte (0xCC).
fn holds_breakpoint(site: u64) -> bool {
    let mut found = [0u8; 5];
    // SAFETY: as in `in_place`: the loader validated [site, site+5), mapped and readable.
    unsafe { std::ptr::copy_nonoverlapping(site as *const u8, found.as_mut_ptr(), 5) };
    found.contains(&0xcc)
}

/// Writes `jumps` (site, target), which the loader validated, with every other thread
/// stopped.
pub fn write(jumps: &[(u64, u64)]) -> Report {
    let mut report = Report {
        stop: "signal",
        ..Report::default()
    };
    if jumps.is_empty() {
        return report;
    }
    // Under a debugger a 0xCC in a window may be its breakpoint: never written over.
    let debugger = traced();
    // Everything used while the world is stopped is allocated here.
    let mut plan: Vec<Jump> = jumps
        .iter()
        .filter_map(|&(site, target)| {
            let bytes = encode(site, target)?;
            Some(Jump {
                site,
                bytes,
                busy: false,
                held: false,
            })
        })
        .collect();
    plan.sort_by_key(|j| j.site);
    for attempt in 1..=TRIES {
        let last = attempt == TRIES;
        let stopped = stop::with_world_stopped(|threads| {
            let mut any_busy = false;
            for jump in plan.iter_mut() {
                let end = jump.site.saturating_add(JMP_LEN);
                jump.busy = threads.iter().any(|&rip| rip > jump.site && rip < end);
                // Read with the debugger's threads as stopped as ours: it inserts its
                // breakpoints while the app runs, so this is what will be restored later.
                jump.held = debugger && holds_breakpoint(jump.site);
                any_busy |= jump.busy;
            }
            (!any_busy || last).then(|| write_stopped(&plan))
        });
        match stopped {
            Err(why) => {
                report.error = Some(format!("no entry jump written: {why}"));
                break;
            }
            Ok((None, held_us)) => {
                report.stop_us = report.stop_us.saturating_add(held_us);
                std::thread::sleep(RETRY_PAUSE);
            }
            Ok((Some(outcome), held_us)) => {
                report.stop_us = report.stop_us.saturating_add(held_us);
                report.busy = plan.iter().filter(|j| j.busy).map(|j| j.site).collect();
                report.held = plan.iter().filter(|j| j.held).map(|j| j.site).collect();
                let (written, failure) = outcome;
                report.written = written;
                report.error = failure.map(|f| f.describe(written));
                break;
            }
        }
    }
    report
}

/// An mprotect that failed while the world was stopped, described after the release.
struct ProtectFailure {
    page: u64,
    prot: c_int,
    errno: c_int,
}

impl ProtectFailure {
    fn describe(&self, written: usize) -> String {
        let prot = if self.prot & PROT_WRITE != 0 {
            "rwx"
        } else {
            "r-x"
        };
        format!(
            "mprotect({:#x}, {prot}) failed after {written} entry jumps were written: {}",
            self.page,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

/// Writes the jumps not marked busy (`plan` is sorted by site) and says how many it wrote.
/// Runs with the world stopped, so it only makes system calls. Neighbouring sites share
/// one writable range; the patcher's own code may lie on those pages, so they stay
/// executable throughout.
fn write_stopped(plan: &[Jump]) -> (usize, Option<ProtectFailure>) {
    const RWX: c_int = PROT_READ | PROT_WRITE | PROT_EXEC;
    const RX: c_int = PROT_READ | PROT_EXEC;
    let mut written = 0;
    let mut failure = None;
    let mut open: Option<(u64, u64)> = None; // the pages made writable so far
    for jump in plan.iter().filter(|j| !j.busy && !j.held) {
        let (start, end) = pages(jump.site);
        let opened = match open {
            Some((from, to)) if start <= to && end <= to => Ok((from, to)),
            Some((from, to)) if start <= to => protect(to, end, RWX).map(|()| (from, end)),
            _ => match open
                .take()
                .map_or(Ok(()), |(from, to)| protect(from, to, RX))
            {
                Ok(()) => protect(start, end, RWX).map(|()| (start, end)),
                Err(e) => Err(e),
            },
        };
        match opened {
            Ok(range) => open = Some(range),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        // SAFETY: the loader checked that [site, site+5) lies in executable code of the
        // program or of an applied patch, which is never unmapped; its pages were just
        // made writable. Every other thread is stopped and none is inside the window
        // (busy sites are skipped), so no one executes these bytes while they change,
        // and each runs a serializing instruction before it resumes.
        unsafe { std::ptr::copy_nonoverlapping(jump.bytes.as_ptr(), jump.site as *mut u8, 5) };
        written += 1;
    }
    if let Some(Err(e)) = open.map(|(from, to)| protect(from, to, RX)) {
        failure = failure.or(Some(e));
    }
    sys::serialize();
    (written, failure)
}

/// The page-aligned range covering a jump's window at `site`.
fn pages(site: u64) -> (u64, u64) {
    let end = site
        .saturating_add(JMP_LEN)
        .div_ceil(PAGE)
        .saturating_mul(PAGE);
    (site - site % PAGE, end)
}

fn protect(start: u64, end: u64, prot: c_int) -> Result<(), ProtectFailure> {
    // SAFETY: [start, end) covers only pages holding validated jump sites, all in r-x code
    // mappings; changing their protection (to rwx, or back to r-x) unmaps nothing.
    let ret = unsafe { sys::mprotect(start as *mut c_void, (end - start) as usize, prot) };
    if ret == 0 {
        return Ok(());
    }
    Err(ProtectFailure {
        page: start,
        prot,
        errno: sys::errno(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{self, CodeMap, Patch, Segment};
    use crate::stop::tests::serial;
    use std::hint::black_box;

    #[inline(never)]
    extern "C" fn old() -> u32 {
        black_box(1)
    }

    #[inline(never)]
    extern "C" fn new() -> u32 {
        black_box(2)
    }

    #[test]
    fn encodes_rel32_jumps_and_refuses_far_ones() {
        assert_eq!(encode(0x1000, 0x1005), Some([0xe9, 0, 0, 0, 0]));
        assert_eq!(encode(0x1000, 0x1000), Some([0xe9, 0xfb, 0xff, 0xff, 0xff]));
        assert_eq!(
            encode(0, 5 + i32::MAX as u64),
            Some([0xe9, 0xff, 0xff, 0xff, 0x7f])
        );
        assert_eq!(encode(0, 6 + i32::MAX as u64), None);
        assert_eq!(encode(u64::MAX, 0), None);
        assert_eq!(encode(u64::MAX - 5, u64::MAX), Some([0xe9, 0, 0, 0, 0]));
    }

    #[test]
    fn a_stored_function_pointer_runs_the_new_code_after_an_entry_jump() {
        let _serial = serial();
        let stored: extern "C" fn() -> u32 = black_box(old);
        assert_eq!(stored(), 1);
        let site = old as *const () as u64;
        let code = CodeMap::of_executable();
        assert!(
            code.contains(site, JMP_LEN),
            "old() is not in the program's code"
        );
        let report = write(&[(site, new as *const () as u64)]);
        assert_eq!((report.written, report.error.as_deref()), (1, None));
        assert!(report.busy.is_empty());
        assert_eq!(stored(), 2);
        assert_eq!(black_box(old)(), 2);
    }

    // A function a thread can be kept strictly inside the first 5 bytes of: it spins on
    // `pause; jmp` at bytes 1..4 until those are redirected to the `ret` below.
    std::arch::global_asm!(
        ".text",
        ".p2align 4",
        ".globl hotline_test_spin",
        ".type hotline_test_spin, @function",
        "hotline_test_spin:",
        "    nop",
        "2:  pause",
        "    jmp 2b",
        "    nop; nop; nop; nop; nop; nop; nop; nop",
        ".globl hotline_test_spin_exit",
        "hotline_test_spin_exit:",
        "    ret",
    );

    extern "C" {
        fn hotline_test_spin();
        fn hotline_test_spin_exit();
    }

    #[test]
    fn a_site_a_thread_stays_inside_is_retried_then_reported_busy() {
        let _serial = serial();
        // SAFETY: the function takes no arguments and touches no memory; it returns once
        // its loop is redirected below.
        let spinner = std::thread::spawn(|| unsafe { hotline_test_spin() });
        std::thread::sleep(Duration::from_millis(20));
        let site = hotline_test_spin as *const () as u64;
        let exit = hotline_test_spin_exit as *const () as u64;
        let report = write(&[(site, exit)]);
        assert_eq!(report.busy, [site]);
        assert_eq!((report.written, report.error.as_deref()), (0, None));
        assert!(report.stop_us > 0);
        // The loop's `jmp` (at site+3) is an instruction boundary the thread may stand on:
        // not busy. Redirected, the thread leaves the loop and returns.
        let report = write(&[(site + 3, exit)]);
        assert_eq!((report.written, report.busy.len()), (1, 0));
        spinner.join().unwrap();
    }

    #[inline(never)]
    extern "C" fn old_in_program() -> u32 {
        black_box(3)
    }

    #[test]
    fn a_loaded_patch_takes_over_an_old_function_through_its_entry_jump() {
        let _serial = serial();
        let stored: extern "C" fn() -> u32 = black_box(old_in_program);
        assert_eq!(stored(), 3);
        let region = loader::reserve_region(crate::hotline_aslr_anchor() as u64).unwrap();
        // mov eax, 4; ret
        let code = [0xb8, 4, 0, 0, 0, 0xc3];
        let image = std::env::temp_dir().join(format!("hotline-jump-{}.img", std::process::id()));
        std::fs::write(&image, code).unwrap();
        let site = old_in_program as *const () as u64;
        let patch = Patch {
            image: image.to_string_lossy().into_owned(),
            segments: vec![Segment {
                addr: region.start,
                offset: 0,
                filesz: code.len() as u64,
                memsz: PAGE,
                prot: "rx".into(),
            }],
            imports: vec![],
            eh_frame: None,
            table: vec![],
            entry_jumps: vec![(site, region.start)],
            stop_by_engine: false,
        };
        let mut map = CodeMap::of_executable();
        loader::load(region, &patch, &map).unwrap();
        std::fs::remove_file(&image).unwrap();
        map.add_patch(&patch);
        let report = write(&patch.entry_jumps);
        assert_eq!((report.written, report.error.as_deref()), (1, None));
        assert_eq!(stored(), 4);
        assert_eq!(
            report.to_json(),
            format!(
                "{{\"written\":1,\"busy\":[],\"held\":[],\"error\":null,\"stop_us\":{},\"stop\":\"signal\"}}",
                report.stop_us
            )
        );
        // A site in the applied patch can be redirected by a later one.
        assert!(map.contains(region.start, JMP_LEN));
    }
}
