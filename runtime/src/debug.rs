//! Makes patched code visible to debuggers and to std's backtrace (Linux x86-64).
//!
//! The engine writes a debug ELF per applied patch (sections at the addresses the patch
//! was placed at, `.symtab`, relocated DWARF, `.eh_frame`) and names it in a `debug-info`
//! message. Two consumers need to hear of it:
//!
//! * **gdb and lldb**, through the GDB JIT interface: `__jit_debug_descriptor` lists the
//!   ELF images in memory, and the debugger's breakpoint on `__jit_debug_register_code`
//!   tells it when one is added. The images are kept in memory forever.
//! * **std's backtrace** (backtrace-rs + gimli), which finds code through
//!   `dl_iterate_phdr` and reads the debug info from the file named there. The runtime
//!   defines `dl_iterate_phdr`: the executable's own definition is what std (linked into
//!   it) calls, and, exported because libgcc_s refers to it, what libgcc's unwinder calls
//!   too. It calls the real one (`dlsym(RTLD_NEXT)`) with a forwarding callback that,
//!   right after the main program, reports the patch region as extra modules.
//!
//! std reads the module list once per process (at its first backtrace) and never again,
//! so the list must already name every future patch. The region is cut into fixed
//! 64 KiB slots, the engine starts every patch on a slot boundary, and each slot is
//! reported as one module: one `PT_LOAD` header covering the slot, bias `STD_BIAS`, named
//! `<HOTLINE_DEBUG_DIR>/<slot address in hex>.debug`, a file (a symlink to the patch's ELF)
//! the engine creates once the patch is applied and never changes. A slot whose file does
//! not exist yet is simply not symbolized, and std retries it the next time (it caches
//! only mappings it could read).
//!
//! Soundness of the interposition:
//! * Every extra module is reported from inside the real walk (from the forwarding
//!   callback), so the caller's callback runs under glibc's loader lock exactly as for
//!   real modules; libgcc's unwinder, which keeps a cache it guards with that lock, is
//!   as safe as before.
//! * The callback contract holds: the `dl_phdr_info` and its program headers live on the
//!   stack for the duration of the call only, `size` is the full glibc structure (64
//!   bytes, with the `adds`/`subs` counters the real walk passed for the main program), a
//!   non-zero return stops the walk and is returned, and nothing here allocates or locks.
//! * The slot grid is published once (a leaked `Grid`, `Release` store, `Acquire` load)
//!   and never changes; nothing about a walk depends on patches being applied.

use crate::loader::{Patch, Region};
use crate::sys::{self, DlPhdrInfo, Elf64Phdr, PhdrCallback, DL_PHDR_INFO_SIZE};
use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The patch region is reported as modules of this size; patches start on its multiples.
pub const SLOT: u64 = 64 << 10;
/// The load bias reported for the slots. std's backtrace takes a module with bias 0 for
/// the executable itself, so it must not be 0; the files it names (`*.rel.debug`, made
/// by the engine) have this subtracted from every address.
pub const STD_BIAS: u64 = SLOT;
/// The largest debug ELF the runtime keeps in memory.
pub const MAX_SYMFILE: u64 = 512 << 20;
/// Room for `<dir>/<16 hex digits>.debug` and its NUL.
const NAME_MAX: usize = 4096;

// -- GDB JIT interface (gdb/jit.h; lldb reads the same) ---------------------------------

#[repr(C)]
struct JitCodeEntry {
    next: *mut JitCodeEntry,
    prev: *mut JitCodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

#[repr(C)]
struct JitDescriptor {
    version: u32,
    /// 0: nothing, 1: `relevant_entry` was registered, 2: unregistered.
    action_flag: u32,
    relevant_entry: *mut JitCodeEntry,
    first_entry: *mut JitCodeEntry,
}

/// The descriptor the debugger reads at the symbol `__jit_debug_descriptor`.
#[repr(transparent)]
pub struct Descriptor(UnsafeCell<JitDescriptor>);

// SAFETY: only `register_with_debugger` writes it, holding `JIT_LOCK`; the debugger reads
// it only while the process is stopped at `__jit_debug_register_code` or attaching.
unsafe impl Sync for Descriptor {}

#[allow(non_upper_case_globals)]
#[no_mangle]
#[used]
pub static __jit_debug_descriptor: Descriptor = Descriptor(UnsafeCell::new(JitDescriptor {
    version: 1,
    action_flag: 0,
    relevant_entry: std::ptr::null_mut(),
    first_entry: std::ptr::null_mut(),
}));

static JIT_LOCK: Mutex<()> = Mutex::new(());

/// The debugger keeps a breakpoint here and reads the descriptor when it is hit.
#[no_mangle]
#[inline(never)]
pub extern "C" fn __jit_debug_register_code() {
    // SAFETY: an empty asm block touches nothing; without `nomem`/`pure` the compiler
    // must assume it has side effects, so neither this function nor calls to it are
    // optimized away, and memory writes before the call are complete.
    unsafe { std::arch::asm!("", options(nostack, preserves_flags)) };
}

/// Adds `symfile` (an ELF image, kept forever) to the debugger's list and notifies it.
fn register_with_debugger(symfile: &'static [u8]) {
    let _held = JIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let descriptor = __jit_debug_descriptor.0.get();
    // SAFETY: JIT_LOCK serializes every writer of the descriptor and its entries; entries
    // are leaked, so the pointers stored in the list stay valid for the process's life.
    unsafe {
        let first = (*descriptor).first_entry;
        let entry = Box::leak(Box::new(JitCodeEntry {
            next: first,
            prev: std::ptr::null_mut(),
            symfile_addr: symfile.as_ptr(),
            symfile_size: symfile.len() as u64,
        }));
        if !first.is_null() {
            (*first).prev = entry;
        }
        (*descriptor).first_entry = entry;
        (*descriptor).relevant_entry = entry;
        (*descriptor).action_flag = 1;
    }
    __jit_debug_register_code();
    // SAFETY: as above, under JIT_LOCK.
    unsafe { (*descriptor).action_flag = 0 };
}

// -- dl_iterate_phdr ------------------------------------------------------------------

/// The patch region as `dl_iterate_phdr` reports it.
struct Grid {
    start: u64,
    slots: u64,
    /// `<dir>/`, NUL-free.
    dir: Vec<u8>,
}

static GRID: AtomicPtr<Grid> = AtomicPtr::new(std::ptr::null_mut());
static REAL: AtomicUsize = AtomicUsize::new(0);

type IteratePhdr = unsafe extern "C" fn(Option<PhdrCallback>, *mut c_void) -> c_int;

/// Reports `region` to `dl_iterate_phdr` from now on, naming slots' files in `dir`. Once.
pub fn publish_grid(region: Region, dir: &str) {
    let mut dir = dir.as_bytes().to_vec();
    dir.push(b'/');
    if dir.len() + 32 > NAME_MAX || dir.contains(&0) || !GRID.load(Ordering::Acquire).is_null() {
        return;
    }
    let grid = Box::leak(Box::new(Grid {
        start: region.start,
        slots: region.size / SLOT,
        dir,
    }));
    GRID.store(grid, Ordering::Release);
}

fn real_iterate_phdr() -> Option<IteratePhdr> {
    let mut found = REAL.load(Ordering::Acquire);
    if found == 0 {
        // SAFETY: dlsym only reads the loaded objects' symbol tables; RTLD_NEXT from the
        // executable finds the definition after it in search order: glibc's.
        found = unsafe { sys::dlsym(sys::RTLD_NEXT, c"dl_iterate_phdr".as_ptr()) } as usize;
        if found == 0 || found == dl_iterate_phdr as *const () as usize {
            return None;
        }
        REAL.store(found, Ordering::Release);
    }
    // SAFETY: `found` is glibc's dl_iterate_phdr, which has exactly this signature.
    Some(unsafe { std::mem::transmute::<usize, IteratePhdr>(found) })
}

/// The caller's callback and data, and whether the main program was seen yet.
struct Walk {
    callback: PhdrCallback,
    data: *mut c_void,
    grid: &'static Grid,
    main_seen: bool,
}

/// glibc's walk plus the patch region's slots, reported right after the main program.
///
/// # Safety
/// As for glibc's `dl_iterate_phdr`: `callback` must be safe to call with a valid
/// `dl_phdr_info`, its size and `data`.
#[no_mangle]
pub unsafe extern "C" fn dl_iterate_phdr(
    callback: Option<PhdrCallback>,
    data: *mut c_void,
) -> c_int {
    let Some(real) = real_iterate_phdr() else {
        return 0;
    };
    let grid = GRID.load(Ordering::Acquire);
    let Some(callback) = callback.filter(|_| !grid.is_null()) else {
        // SAFETY: the caller's arguments, passed through unchanged.
        return unsafe { real(callback, data) };
    };
    let mut walk = Walk {
        callback,
        data,
        // SAFETY: a published grid is leaked and never changes.
        grid: unsafe { &*grid },
        main_seen: false,
    };
    // SAFETY: `forward` honours the callback contract; `walk` outlives the call.
    unsafe { real(Some(forward), (&raw mut walk).cast()) }
}

unsafe extern "C" fn forward(info: *mut DlPhdrInfo, size: usize, walk: *mut c_void) -> c_int {
    // SAFETY: `walk` is the Walk that dl_iterate_phdr above passed to the real walk.
    let walk = unsafe { &mut *walk.cast::<Walk>() };
    // SAFETY: glibc's own info, passed on as the caller's callback expects it.
    let ret = unsafe { (walk.callback)(info, size, walk.data) };
    if ret != 0 || walk.main_seen {
        return ret;
    }
    walk.main_seen = true;
    let (adds, subs) = if size >= DL_PHDR_INFO_SIZE {
        // SAFETY: glibc says (by `size`) that the counters are present.
        unsafe { ((*info).adds, (*info).subs) }
    } else {
        (0, 0)
    };
    report_slots(walk, adds, subs)
}

/// Calls the walk's callback once per slot, still inside glibc's walk.
fn report_slots(walk: &Walk, adds: u64, subs: u64) -> c_int {
    let grid = walk.grid;
    let mut name = [0u8; NAME_MAX];
    name[..grid.dir.len()].copy_from_slice(&grid.dir);
    for k in 0..grid.slots {
        let addr = grid.start + k * SLOT;
        let mut at = grid.dir.len();
        at += write_hex(&mut name[at..], addr);
        name[at..at + 7].copy_from_slice(b".debug\0");
        let phdr = Elf64Phdr {
            p_type: sys::PT_LOAD,
            p_flags: sys::PF_R | sys::PF_X,
            p_offset: 0,
            p_vaddr: addr - STD_BIAS,
            p_paddr: addr - STD_BIAS,
            p_filesz: 0,
            p_memsz: SLOT,
            p_align: SLOT,
        };
        let mut info = DlPhdrInfo {
            addr: STD_BIAS,
            name: name.as_ptr().cast(),
            phdr: &phdr,
            phnum: 1,
            adds,
            subs,
            tls_modid: 0,
            tls_data: std::ptr::null_mut(),
        };
        // SAFETY: `info`, its header and its name are valid for the call, as the
        // callback contract requires; `walk.data` is the caller's own.
        let ret = unsafe { (walk.callback)(&mut info, DL_PHDR_INFO_SIZE, walk.data) };
        if ret != 0 {
            return ret;
        }
    }
    0
}

/// Writes `v` in lower-case hex without leading zeros; returns the digits written.
fn write_hex(out: &mut [u8], v: u64) -> usize {
    let digits = (64 - v.max(1).leading_zeros()).div_ceil(4) as usize;
    for (i, digit) in out.iter_mut().take(digits).enumerate() {
        let nibble = (v >> (4 * (digits - 1 - i))) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    digits
}

// -- debug-info messages ---------------------------------------------------------------

/// Applied patches' code, and which have their debug info registered.
#[derive(Debug, Default)]
pub struct Registry {
    /// (seq, the patch's segments as [start, end)).
    applied: Vec<(u64, Vec<(u64, u64)>)>,
    registered: Vec<u64>,
}

impl Registry {
    pub fn note_applied(&mut self, seq: u64, patch: &Patch) {
        let spans = patch
            .segments
            .iter()
            .filter_map(|s| Some((s.addr, s.addr.checked_add(s.memsz)?)))
            .collect();
        self.applied.push((seq, spans));
    }

    /// Reads and checks the debug ELF of applied patch `seq`, then registers it.
    pub fn register(&mut self, seq: u64, path: &str) -> Result<(), String> {
        let Some((_, spans)) = self.applied.iter().find(|(s, _)| *s == seq) else {
            return Err(format!("patch {seq} was not applied"));
        };
        if self.registered.contains(&seq) {
            return Err(format!(
                "the debug info of patch {seq} is already registered"
            ));
        }
        let len = std::fs::metadata(path)
            .map_err(|e| format!("cannot read debug info {path}: {e}"))?
            .len();
        if len > MAX_SYMFILE {
            return Err(format!(
                "debug info {path} is larger than {MAX_SYMFILE} bytes"
            ));
        }
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read debug info {path}: {e}"))?;
        check_elf(&bytes, spans)?;
        register_with_debugger(Vec::leak(bytes));
        self.registered.push(seq);
        Ok(())
    }
}

const SHF_ALLOC: u64 = 2;
const SHT_NOBITS: u32 = 8;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A 64-bit little-endian x86-64 ELF whose section headers lie inside the file, each
/// section's bytes too, and whose loaded sections lie inside the patch's segments.
fn check_elf(b: &[u8], spans: &[(u64, u64)]) -> Result<(), String> {
    if b.get(..7) != Some(b"\x7fELF\x02\x01\x01") || u16_at(b, 18) != Some(62) {
        return Err("debug info is not a 64-bit little-endian x86-64 ELF file".into());
    }
    let bad = || "debug info has a malformed section header table".to_string();
    let shoff = usize::try_from(u64_at(b, 0x28).ok_or_else(bad)?).map_err(|_| bad())?;
    let shentsize = usize::from(u16_at(b, 0x3a).ok_or_else(bad)?);
    let shnum = usize::from(u16_at(b, 0x3c).ok_or_else(bad)?);
    if shentsize != 64 {
        return Err(bad());
    }
    for i in 0..shnum {
        let h = i
            .checked_mul(64)
            .and_then(|o| o.checked_add(shoff))
            .and_then(|h| b.get(h..h.checked_add(64)?))
            .ok_or_else(bad)?;
        let kind = u32_at(h, 4).ok_or_else(bad)?;
        let flags = u64_at(h, 8).ok_or_else(bad)?;
        let addr = u64_at(h, 16).ok_or_else(bad)?;
        let offset = u64_at(h, 24).ok_or_else(bad)?;
        let size = u64_at(h, 32).ok_or_else(bad)?;
        if kind != SHT_NOBITS && offset.checked_add(size).is_none_or(|e| e > b.len() as u64) {
            return Err(format!("debug info section {i} lies outside the file"));
        }
        let end = addr.checked_add(size);
        let inside = end.is_some_and(|end| spans.iter().any(|&(s, e)| addr >= s && end <= e));
        if flags & SHF_ALLOC != 0 && size > 0 && !inside {
            return Err(format!(
                "debug info section {i} at {addr:#x} is outside the patch's segments"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_names_have_no_leading_zeros() {
        let mut out = [0u8; 16];
        let n = write_hex(&mut out, 0x7f12_3400_0000);
        assert_eq!(&out[..n], b"7f1234000000");
        assert_eq!(write_hex(&mut out, 0), 1);
        assert_eq!(&out[..1], b"0");
    }

    /// A minimal ELF: the header and one loaded section at `addr` of `size` bytes.
    fn elf(addr: u64, size: u64) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 2 * 64];
        b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[0x28..0x30].copy_from_slice(&64u64.to_le_bytes());
        b[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&2u16.to_le_bytes());
        let h = 128;
        b[h + 4..h + 8].copy_from_slice(&SHT_NOBITS.to_le_bytes());
        b[h + 8..h + 16].copy_from_slice(&SHF_ALLOC.to_le_bytes());
        b[h + 16..h + 24].copy_from_slice(&addr.to_le_bytes());
        b[h + 32..h + 40].copy_from_slice(&size.to_le_bytes());
        b
    }

    #[test]
    fn debug_elf_must_be_well_formed_and_describe_only_the_patch() {
        let spans = [(0x10_000, 0x20_000)];
        check_elf(&elf(0x10_000, 0x1000), &spans).unwrap();
        let outside = check_elf(&elf(0x1f_000, 0x2000), &spans).unwrap_err();
        assert!(outside.contains("outside the patch"), "{outside}");
        assert!(check_elf(&elf(u64::MAX - 4, 8), &spans).is_err());
        assert!(check_elf(b"\x7fELF", &spans).is_err());
        let mut truncated = elf(0x10_000, 16);
        truncated.truncate(150);
        assert!(check_elf(&truncated, &spans).is_err());
        let mut far = elf(0x10_000, 16);
        far[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(check_elf(&far, &spans).is_err());
    }

    #[test]
    fn debug_info_is_accepted_only_for_an_applied_patch_once() {
        let mut registry = Registry::default();
        assert!(registry
            .register(1, "/nonexistent")
            .unwrap_err()
            .contains("not applied"));
        let path = std::env::temp_dir().join(format!("hotline-debug-{}.elf", std::process::id()));
        std::fs::write(&path, elf(0x10_000, 0x1000)).unwrap();
        registry.applied.push((1, vec![(0x10_000, 0x20_000)]));
        let path = path.to_str().unwrap().to_string();
        registry.register(1, &path).unwrap();
        assert!(registry
            .register(1, &path)
            .unwrap_err()
            .contains("already registered"));
        std::fs::remove_file(&path).unwrap();
        // SAFETY: the test reads the descriptor it just updated, on this thread.
        let first = unsafe { (*__jit_debug_descriptor.0.get()).first_entry };
        assert!(!first.is_null());
    }

    unsafe extern "C" fn collect(info: *mut DlPhdrInfo, size: usize, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the Vec the test passed; `info` is valid for this call.
        let (names, info) = unsafe { (&mut *data.cast::<Vec<(String, u64, usize)>>(), &*info) };
        // SAFETY: every reported module has a NUL-terminated name (maybe empty).
        let name = unsafe { std::ffi::CStr::from_ptr(info.name) };
        // SAFETY: phnum headers are valid for the call.
        let vaddr = unsafe { (*info.phdr).p_vaddr };
        names.push((name.to_string_lossy().into_owned(), vaddr, size));
        0
    }

    #[test]
    fn the_walk_reports_every_slot_right_after_the_main_program() {
        let region = Region {
            start: 0x7e00_0000_0000,
            size: 4 * SLOT,
        };
        publish_grid(region, "/tmp/hl");
        let mut seen: Vec<(String, u64, usize)> = Vec::new();
        // SAFETY: `collect` only reads the info and pushes to `seen`, which outlives the call.
        unsafe { dl_iterate_phdr(Some(collect), (&raw mut seen).cast()) };
        let grid = GRID.load(Ordering::Acquire);
        // SAFETY: published grids are leaked.
        let grid = unsafe { &*grid };
        if grid.start != region.start {
            return; // another test published first: the grid is set once per process
        }
        assert_eq!(seen[0].0, "", "the main program comes first");
        let slots: Vec<_> = seen[1..5]
            .iter()
            .map(|(n, v, _)| (n.as_str(), *v))
            .collect();
        let at = |a: u64| a - STD_BIAS;
        assert_eq!(
            slots[0],
            ("/tmp/hl/7e0000000000.debug", at(0x7e00_0000_0000))
        );
        assert_eq!(
            slots[3],
            ("/tmp/hl/7e0000030000.debug", at(0x7e00_0003_0000))
        );
        assert!(seen[1..5].iter().all(|s| s.2 == DL_PHDR_INFO_SIZE));
        assert!(seen.len() > 5, "the shared libraries follow");
    }
}
