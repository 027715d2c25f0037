//! Maps patch images into a region reserved near the executable (Linux x86-64).
//!
//! The engine links each patch for a fixed address inside this region, so the patch's
//! PC-relative references to the executable's functions, statics and thread-locals are
//! already final; loading is copying bytes, filling the import slots that point into
//! shared libraries, setting page protections and registering unwind tables.
//!
//! Everything in a patch message is checked first, with checked arithmetic only: any
//! u64 the engine sends is either accepted or refused with a reason, never a panic.

use crate::jumps::{self, JMP_LEN};
use crate::sys::{self, PAGE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE};
use std::ffi::{c_int, c_void, CString};

/// Patches live within +-2 GiB of the executable so rel32 references reach it.
pub const REGION_SIZE: u64 = 256 << 20;

#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub start: u64,
    pub size: u64,
}

#[derive(Debug)]
pub struct Segment {
    pub addr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub prot: String,
}

#[derive(Debug, Default)]
pub struct Patch {
    pub image: String,
    pub segments: Vec<Segment>,
    pub imports: Vec<(u64, String)>,
    pub eh_frame: Option<u64>,
    pub table: Vec<(u64, u64)>,
    /// (site, target): `jmp target` is written at each old function entry `site`.
    pub entry_jumps: Vec<(u64, u64)>,
    /// The engine holds the threads and writes the jumps (`quiet_stop.rs`).
    pub stop_by_engine: bool,
}

/// Code an entry jump may be written into, as [start, end) ranges: the executable
/// segments of the main program and the rx segments of the patches applied so far.
#[derive(Debug, Clone)]
pub struct CodeMap {
    spans: Vec<(u64, u64)>,
}

impl CodeMap {
    /// The main program's executable PT_LOAD segments, at their runtime addresses.
    pub fn of_executable() -> CodeMap {
        /// dl_iterate_phdr visits the main program first; stop there.
        unsafe extern "C" fn main_program(
            info: *mut sys::DlPhdrInfo,
            _size: usize,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: glibc passes a valid dl_phdr_info for the duration of the call, and
            // `data` is the Vec that of_executable() handed to dl_iterate_phdr.
            let (info, spans) = unsafe { (&*info, &mut *data.cast::<Vec<(u64, u64)>>()) };
            // SAFETY: dlpi_phdr points to the object's dlpi_phnum program headers.
            let phdrs = unsafe { std::slice::from_raw_parts(info.phdr, usize::from(info.phnum)) };
            for p in phdrs {
                if p.p_type == sys::PT_LOAD && p.p_flags & sys::PF_X != 0 {
                    let start = info.addr.checked_add(p.p_vaddr);
                    if let Some((start, end)) =
                        start.and_then(|s| Some((s, s.checked_add(p.p_memsz)?)))
                    {
                        spans.push((start, end));
                    }
                }
            }
            1
        }
        let mut spans: Vec<(u64, u64)> = Vec::new();
        // SAFETY: the callback only reads what glibc hands it and pushes to `spans`, which
        // outlives the call.
        unsafe { sys::dl_iterate_phdr(Some(main_program), (&raw mut spans).cast()) };
        CodeMap { spans }
    }

    /// Adds an applied patch's code, where a later patch may write entry jumps.
    pub fn add_patch(&mut self, patch: &Patch) {
        for s in patch.segments.iter().filter(|s| s.prot == "rx") {
            if let Some(end) = s.addr.checked_add(s.memsz) {
                self.spans.push((s.addr, end));
            }
        }
    }

    /// Whether [start, start+len) lies entirely inside one code range.
    pub fn contains(&self, start: u64, len: u64) -> bool {
        start
            .checked_add(len)
            .is_some_and(|end| self.spans.iter().any(|&(s, e)| start >= s && end <= e))
    }
}

/// Reserves address space (no memory) below the executable for patch images.
pub fn reserve_region(anchor: u64) -> Option<Region> {
    let base = anchor & !((1 << 30) - 1);
    for step in 1..8u64 {
        let Some(hint) = base.checked_sub(step * REGION_SIZE) else {
            break;
        };
        // SAFETY: an anonymous PROT_NONE mapping with MAP_FIXED_NOREPLACE never replaces an
        // existing mapping; it only reserves free address space, so no Rust object is affected.
        let got = unsafe {
            sys::mmap(
                hint as *mut c_void,
                REGION_SIZE as usize,
                PROT_NONE,
                sys::MAP_PRIVATE
                    | sys::MAP_ANONYMOUS
                    | sys::MAP_NORESERVE
                    | sys::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if got as u64 == hint {
            return Some(Region {
                start: hint,
                size: REGION_SIZE,
            });
        }
    }
    None
}

fn prot_bits(prot: &str) -> Result<c_int, String> {
    match prot {
        "rx" => Ok(PROT_READ | PROT_EXEC),
        "r" => Ok(PROT_READ),
        "rw" => Ok(PROT_READ | PROT_WRITE),
        other => Err(format!("unknown segment protection {other:?}")),
    }
}

/// Checks everything the patch asks for against the region and the code map before
/// touching memory. Only checked arithmetic: any u64 in the message is handled.
fn validate(region: Region, patch: &Patch, file_len: u64, code: &CodeMap) -> Result<(), String> {
    let region_end = region
        .start
        .checked_add(region.size)
        .ok_or("the patch region wraps around the address space")?;
    let inside =
        |a: u64, n: u64| a >= region.start && a.checked_add(n).is_some_and(|e| e <= region_end);
    let mut segs: Vec<&Segment> = patch.segments.iter().collect();
    segs.sort_by_key(|s| s.addr);
    let mut previous_end = None; // page-rounded end of the previous segment
    for s in segs {
        prot_bits(&s.prot)?;
        if !inside(s.addr, s.memsz) {
            return Err(format!(
                "segment at {:#x} (size {}) lies outside the patch region",
                s.addr, s.memsz
            ));
        }
        if s.addr % PAGE != 0 {
            return Err(format!("segment at {:#x} is not page-aligned", s.addr));
        }
        if s.filesz > s.memsz {
            return Err(format!(
                "segment at {:#x} has more file bytes ({}) than memory ({})",
                s.addr, s.filesz, s.memsz
            ));
        }
        if s.offset.checked_add(s.filesz).is_none_or(|e| e > file_len) {
            return Err(format!(
                "segment at {:#x} reads past the end of the image file",
                s.addr
            ));
        }
        if previous_end.is_some_and(|end| end > s.addr) {
            return Err(format!("segments overlap at {:#x}", s.addr));
        }
        previous_end = s
            .memsz
            .checked_next_multiple_of(PAGE)
            .and_then(|n| s.addr.checked_add(n));
        if previous_end.is_none() {
            return Err(format!("segment at {:#x} wraps around", s.addr));
        }
    }
    let in_seg = |a: u64, len: u64, prot: Option<&str>| {
        patch.segments.iter().any(|s| {
            prot.is_none_or(|p| s.prot == p)
                && a >= s.addr
                && a.checked_add(len)
                    .zip(s.addr.checked_add(s.memsz))
                    .is_some_and(|(end, seg_end)| end <= seg_end)
        })
    };
    for (slot, name) in &patch.imports {
        if slot % 8 != 0 || !in_seg(*slot, 8, Some("rw")) {
            return Err(format!(
                "import slot for {name} at {slot:#x} is not in a writable segment"
            ));
        }
    }
    for (old, new) in &patch.table {
        if *old == 0 || !in_seg(*new, 1, Some("rx")) {
            return Err(format!(
                "jump table entry {old:#x} -> {new:#x} points outside the patch's code"
            ));
        }
    }
    if let Some(eh) = patch.eh_frame {
        if !in_seg(eh, 4, None) {
            return Err(format!("unwind table at {eh:#x} is outside the patch"));
        }
    }
    // An entry jump an earlier stop could not write is sent again with a later patch (or
    // alone): its target is then an earlier patch's code, mapped in the region.
    let earlier_patch =
        |a: u64| code.contains(a, 1) && a >= region.start && a - region.start < region.size;
    for &(site, target) in &patch.entry_jumps {
        if !in_seg(target, 1, Some("rx")) && !earlier_patch(target) {
            return Err(format!(
                "entry jump {site:#x} -> {target:#x} points outside the patch's code"
            ));
        }
        if !code.contains(site, JMP_LEN) {
            return Err(format!(
                "entry jump site {site:#x} is not in the program's code or an earlier patch's"
            ));
        }
        if jumps::encode(site, target).is_none() {
            return Err(format!(
                "entry jump {site:#x} -> {target:#x} is out of rel32 reach"
            ));
        }
    }
    let mut sites: Vec<u64> = patch.entry_jumps.iter().map(|&(site, _)| site).collect();
    sites.sort_unstable();
    for pair in sites.windows(2) {
        if let [a, b] = *pair {
            if a.checked_add(JMP_LEN).is_none_or(|end| end > b) {
                return Err(format!("entry jump sites {a:#x} and {b:#x} overlap"));
            }
        }
    }
    Ok(())
}

fn protect(addr: u64, len: u64, prot: c_int) -> Result<(), String> {
    let len = len.div_ceil(PAGE) * PAGE;
    // SAFETY: callers pass page-aligned ranges inside the region this module reserved,
    // which holds nothing but patch images.
    if unsafe { sys::mprotect(addr as *mut c_void, len as usize, prot) } != 0 {
        return Err(format!(
            "mprotect({addr:#x}, {len}) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn lookup(name: &str) -> Option<u64> {
    let c = CString::new(name).ok()?;
    // SAFETY: dlsym with RTLD_DEFAULT (null) only reads the loaded objects' symbol tables.
    let p = unsafe { sys::dlsym(std::ptr::null_mut(), c.as_ptr()) };
    (!p.is_null()).then_some(p as u64)
}

/// Maps `patch` into `region`. On error nothing it mapped is reachable: entry jumps are
/// written and the jump table published by the caller only after this returns Ok.
pub fn load(region: Region, patch: &Patch, code: &CodeMap) -> Result<(), String> {
    let bytes = std::fs::read(&patch.image)
        .map_err(|e| format!("cannot read patch image {}: {e}", patch.image))?;
    validate(region, patch, bytes.len() as u64, code)?;
    let mut imports = Vec::with_capacity(patch.imports.len());
    for (slot, name) in &patch.imports {
        let addr =
            lookup(name).ok_or_else(|| format!("symbol {name} is not in any loaded library"))?;
        imports.push((*slot, addr));
    }
    for s in &patch.segments {
        protect(s.addr, s.memsz, PROT_READ | PROT_WRITE)?;
        let src = &bytes[s.offset as usize..(s.offset + s.filesz) as usize];
        // SAFETY: validate() proved [addr, addr+memsz) lies in our reserved region, which was
        // just made writable and is used by no other code; src has filesz <= memsz bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), s.addr as *mut u8, src.len());
            std::ptr::write_bytes(
                (s.addr + s.filesz) as *mut u8,
                0,
                (s.memsz - s.filesz) as usize,
            );
        }
    }
    for (slot, addr) in imports {
        // SAFETY: validate() proved the slot is 8-aligned inside a writable segment of this patch.
        unsafe { (slot as *mut u64).write(addr) };
    }
    for s in &patch.segments {
        protect(s.addr, s.memsz, prot_bits(&s.prot)?)?;
    }
    if let Some(eh) = patch.eh_frame {
        register_unwind_info(eh);
    }
    Ok(())
}

/// Tells the unwinder about the patch's `.eh_frame`, so panics unwind through patched code.
fn register_unwind_info(eh_frame: u64) {
    match lookup("__register_frame") {
        // SAFETY: __register_frame (libgcc) takes a pointer to a zero-terminated .eh_frame,
        // which the engine lays out and relocates for this address; it stays mapped forever.
        Some(f) => unsafe {
            std::mem::transmute::<u64, extern "C" fn(*const u8)>(f)(eh_frame as *const u8)
        },
        None => {
            eprintln!("[hotline] __register_frame not found: a panic in patched code will abort")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    const START: u64 = 0x7f00_0000_0000;
    /// The program's code in the samples: just above the region, in rel32 reach.
    const TEXT: (u64, u64) = (
        START + REGION_SIZE + 0x10_0000,
        START + REGION_SIZE + 0x20_0000,
    );

    fn region() -> Region {
        Region {
            start: START,
            size: REGION_SIZE,
        }
    }

    fn code() -> CodeMap {
        CodeMap { spans: vec![TEXT] }
    }

    fn segment(addr: u64, offset: u64, filesz: u64, memsz: u64, prot: &str) -> Segment {
        Segment {
            addr,
            offset,
            filesz,
            memsz,
            prot: prot.into(),
        }
    }

    /// A patch shaped like the engine's: rx, r (unwind table) and rw (import slots)
    /// segments, a jump table and entry jumps. The image file is 8292 bytes long.
    fn sample() -> Patch {
        Patch {
            image: "/x".into(),
            segments: vec![
                segment(START, 0, 8192, 8192, "rx"),
                segment(START + 8192, 8192, 100, 4096, "r"),
                segment(START + 3 * PAGE, 8292, 0, 4096, "rw"),
            ],
            imports: vec![
                (START + 3 * PAGE, "puts".into()),
                (START + 3 * PAGE + 8, "free".into()),
            ],
            eh_frame: Some(START + 8192),
            table: vec![(TEXT.0 + 0x40, START), (TEXT.0 + 0x80, START + 0x40)],
            entry_jumps: vec![(TEXT.0 + 0x40, START), (TEXT.0 + 0x80, START + 0x40)],
            stop_by_engine: false,
        }
    }

    const FILE_LEN: u64 = 8292;

    fn check(patch: &Patch) -> Result<(), String> {
        validate(region(), patch, FILE_LEN, &code())
    }

    fn refused(patch: Patch, why: &str) {
        let err = check(&patch).expect_err(why);
        assert!(err.contains(why), "{err:?} does not say {why:?}");
    }

    #[test]
    fn the_sample_patch_is_valid() {
        check(&sample()).unwrap();
    }

    #[test]
    fn refuses_entry_jumps_outside_code_or_reach_overlapping_or_overflowing() {
        let with = |jumps: Vec<(u64, u64)>| Patch {
            entry_jumps: jumps,
            ..sample()
        };
        let outside = "not in the program's code or an earlier patch's";
        refused(with(vec![(TEXT.0 - 1, START)]), outside);
        refused(with(vec![(TEXT.1 - 4, START)]), outside); // the window crosses the end
        refused(with(vec![(START + 8192, START)]), outside); // this patch's own code
        refused(with(vec![(0, START)]), outside);
        refused(with(vec![(u64::MAX, START)]), outside);
        refused(with(vec![(u64::MAX - 4, START)]), outside);
        let no_code = "points outside the patch's code";
        refused(with(vec![(TEXT.0, START + 8192)]), no_code); // the r segment
        refused(with(vec![(TEXT.0, START + 3 * PAGE)]), no_code); // the rw segment
        refused(with(vec![(TEXT.0, TEXT.0 + 0x100)]), no_code); // the program's code
        refused(with(vec![(TEXT.0, u64::MAX)]), no_code);
        refused(with(vec![(TEXT.0, START + 2 * PAGE)]), no_code); // just past rx
        let overlap = "overlap";
        refused(with(vec![(TEXT.0, START), (TEXT.0 + 4, START)]), overlap);
        refused(with(vec![(TEXT.0 + 4, START), (TEXT.0, START)]), overlap);
        refused(with(vec![(TEXT.0, START), (TEXT.0, START + 8)]), overlap);
        check(&with(vec![(TEXT.0, START), (TEXT.0 + 5, START)])).unwrap(); // adjacent is fine
        check(&with(vec![])).unwrap();
        // Out of rel32 reach: code 3 GiB above the region.
        let far = TEXT.0 + (3 << 30);
        let far_code = CodeMap {
            spans: vec![(far, far + PAGE)],
        };
        let err = validate(region(), &with(vec![(far, START)]), FILE_LEN, &far_code);
        assert!(err.unwrap_err().contains("out of rel32 reach"));
        // An earlier patch's code is a valid site once added.
        let mut map = code();
        let earlier = Patch {
            segments: vec![segment(START + 0x10_0000, 0, 16, 16, "rx")],
            ..sample()
        };
        map.add_patch(&earlier);
        let later = with(vec![(START + 0x10_0000, START)]);
        validate(region(), &later, FILE_LEN, &map).unwrap();
        let past = with(vec![(START + 0x10_0000 + 12, START)]);
        assert!(validate(region(), &past, FILE_LEN, &map).is_err());
        // A jump an earlier stop could not write, sent again: its target is the earlier
        // patch's code, in the region; the program's own code stays refused as a target.
        let pending = with(vec![(TEXT.0, START + 0x10_0000)]);
        validate(region(), &pending, FILE_LEN, &map).unwrap();
        let pending_alone = Patch {
            segments: vec![],
            table: vec![],
            imports: vec![],
            eh_frame: None,
            ..pending
        };
        validate(region(), &pending_alone, 0, &map).unwrap();
        let into_program = with(vec![(TEXT.0, TEXT.0 + 0x100)]);
        let err = validate(region(), &into_program, FILE_LEN, &map).unwrap_err();
        assert!(err.contains("points outside the patch's code"), "{err}");
    }

    #[test]
    fn refuses_hand_picked_bad_patches_without_panicking() {
        let mut p = sample();
        p.imports[0].0 = u64::MAX - 7; // used to panic: attempt to add with overflow
        refused(p, "not in a writable segment");
        let mut p = sample();
        p.table[0].1 = u64::MAX; // used to panic too
        refused(p, "points outside the patch's code");
        let mut p = sample();
        p.table[0].0 = 0;
        refused(p, "points outside the patch's code");
        let mut p = sample();
        p.imports[1].0 = START + 3 * PAGE + 4; // misaligned
        refused(p, "not in a writable segment");
        let mut p = sample();
        p.imports[1].0 = START + 4 * PAGE - 4; // straddles the end
        refused(p, "not in a writable segment");
        let mut p = sample();
        p.segments[1].addr += 1;
        refused(p, "not page-aligned");
        let mut p = sample();
        p.segments[1].filesz = 4097;
        refused(p, "more file bytes");
        let mut p = sample();
        p.segments[1].addr = START + 4096; // inside the rx segment
        refused(p, "overlap");
        let mut p = sample();
        p.segments[0].memsz = 8193; // its last page is the r segment's
        refused(p, "overlap");
        let mut p = sample();
        p.segments.push(segment(START, 0, 0, 4096, "rw"));
        refused(p, "overlap");
        let mut p = sample();
        p.segments[2].addr = START + REGION_SIZE - PAGE;
        p.segments[2].memsz = 2 * PAGE;
        refused(p, "outside the patch region");
        let mut p = sample();
        p.segments[2].addr = u64::MAX - PAGE + 1;
        refused(p, "outside the patch region");
        let mut p = sample();
        p.segments[2].memsz = u64::MAX;
        refused(p, "outside the patch region");
        let mut p = sample();
        p.segments[0].addr = START - PAGE;
        refused(p, "outside the patch region");
        let mut p = sample();
        p.segments[1].offset = u64::MAX;
        refused(p, "past the end of the image file");
        let mut p = sample();
        p.segments[1].offset = FILE_LEN - 99;
        refused(p, "past the end of the image file");
        let mut p = sample();
        p.segments[1].prot = "rwx".into();
        refused(p, "unknown segment protection");
        let mut p = sample();
        p.eh_frame = Some(START + 8192 + 4093); // the terminator would cross the end
        refused(p, "unwind table");
        let mut p = sample();
        p.eh_frame = Some(u64::MAX);
        refused(p, "unwind table");
        let mut p = sample();
        p.eh_frame = Some(TEXT.0);
        refused(p, "unwind table");
        let huge = Region {
            start: u64::MAX - PAGE,
            size: 2 * PAGE,
        };
        assert!(validate(huge, &sample(), FILE_LEN, &code()).is_err());
    }

    /// Every u64 field of the patch, to be overwritten by the fuzzer.
    fn fields(p: &mut Patch) -> Vec<&mut u64> {
        let mut out: Vec<&mut u64> = Vec::new();
        for s in &mut p.segments {
            out.extend([&mut s.addr, &mut s.offset, &mut s.filesz, &mut s.memsz]);
        }
        out.extend(p.imports.iter_mut().map(|(slot, _)| slot));
        out.extend(p.eh_frame.iter_mut());
        for (a, b) in p.table.iter_mut().chain(p.entry_jumps.iter_mut()) {
            out.extend([a, b]);
        }
        out
    }

    #[test]
    fn structural_fuzz_of_a_valid_patch_never_panics() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let end = START + REGION_SIZE;
        let boundaries = [
            0,
            1,
            4,
            5,
            7,
            8,
            PAGE - 1,
            PAGE,
            PAGE + 1,
            FILE_LEN,
            FILE_LEN + 1,
            i32::MAX as u64,
            1 << 31,
            1 << 32,
            1 << 63,
            u64::MAX,
            u64::MAX - 1,
            u64::MAX - 4,
            u64::MAX - 7,
            u64::MAX - PAGE + 1,
            START - 1,
            START,
            START + 1,
            START + 8188,
            START + 8191,
            START + 8192,
            START + 3 * PAGE - 4,
            START + 4 * PAGE - 8,
            end - PAGE,
            end - 8,
            end - 5,
            end - 1,
            end,
            end + PAGE,
            TEXT.0 - 1,
            TEXT.0,
            TEXT.1 - 5,
            TEXT.1 - 4,
            TEXT.1,
        ];
        let prots = ["rx", "r", "rw", "", "rwx"];
        let (mut ok, mut refused) = (0, 0);
        for case in 0..60_000 {
            let mut p = sample();
            let mut file_len = FILE_LEN;
            for _ in 0..1 + rng.below(3) {
                match rng.below(10) {
                    // Structure: duplicate, drop, or re-protect a segment; add an entry.
                    0 => {
                        let s = &p.segments[rng.below(p.segments.len())];
                        let copy = segment(s.addr, s.offset, s.filesz, s.memsz, &s.prot);
                        p.segments.push(copy);
                    }
                    1 if !p.segments.is_empty() => {
                        p.segments.remove(rng.below(p.segments.len()));
                    }
                    2 if !p.segments.is_empty() => {
                        let at = rng.below(p.segments.len());
                        p.segments[at].prot = prots[rng.below(prots.len())].into();
                    }
                    3 => {
                        let pick = boundaries[rng.below(boundaries.len())];
                        p.entry_jumps.push((pick, START + rng.below(8192) as u64));
                    }
                    4 => file_len = boundaries[rng.below(boundaries.len())],
                    5 => p.eh_frame = None,
                    // Values: a boundary, a small step from the old value, or random bits.
                    _ => {
                        let mut fields = fields(&mut p);
                        let at = rng.below(fields.len());
                        let old = *fields[at];
                        *fields[at] = match rng.below(4) {
                            0 | 1 => boundaries[rng.below(boundaries.len())],
                            2 => old.wrapping_add(rng.next() % 9).wrapping_sub(4),
                            _ => rng.next(),
                        };
                    }
                }
            }
            // Must return Ok or a refusal, never panic.
            match validate(region(), &p, file_len, &code()) {
                Ok(()) => ok += 1,
                Err(why) => {
                    assert!(!why.is_empty(), "case {case}");
                    refused += 1;
                }
            }
        }
        assert!(ok > 1000 && refused > 30_000, "ok {ok}, refused {refused}");
    }
}
