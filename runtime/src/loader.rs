//! Maps patch images into a region reserved near the executable (Linux x86-64).
//!
//! The engine links each patch for a fixed address inside this region, so the patch's
//! PC-relative references to the executable's functions, statics and thread-locals are
//! already final; loading is copying bytes, filling the import slots that point into
//! shared libraries, setting page protections and registering unwind tables.

use std::ffi::{c_char, c_int, c_void, CString};

const PROT_NONE: c_int = 0;
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const PROT_EXEC: c_int = 4;
const MAP_PRIVATE: c_int = 0x02;
const MAP_ANONYMOUS: c_int = 0x20;
const MAP_NORESERVE: c_int = 0x4000;
const MAP_FIXED_NOREPLACE: c_int = 0x10_0000;
const PAGE: u64 = 4096;
/// Patches live within +-2 GiB of the executable so rel32 references reach it.
pub const REGION_SIZE: u64 = 256 << 20;

extern "C" {
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

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

#[derive(Debug)]
pub struct Patch {
    pub image: String,
    pub segments: Vec<Segment>,
    pub imports: Vec<(u64, String)>,
    pub eh_frame: Option<u64>,
    pub table: Vec<(u64, u64)>,
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
            mmap(
                hint as *mut c_void,
                REGION_SIZE as usize,
                PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
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

/// Checks everything the patch asks for against the region before touching memory.
fn validate(region: Region, patch: &Patch, file_len: u64) -> Result<(), String> {
    let inside = |a: u64, n: u64| {
        a >= region.start
            && a.checked_add(n)
                .is_some_and(|e| e <= region.start + region.size)
    };
    let mut segs: Vec<&Segment> = patch.segments.iter().collect();
    segs.sort_by_key(|s| s.addr);
    for (i, s) in segs.iter().enumerate() {
        prot_bits(&s.prot)?;
        if s.addr % PAGE != 0 || !inside(s.addr, s.memsz) || s.filesz > s.memsz {
            return Err(format!(
                "segment at {:#x} (size {}) lies outside the patch region",
                s.addr, s.memsz
            ));
        }
        if s.offset.checked_add(s.filesz).is_none_or(|e| e > file_len) {
            return Err(format!(
                "segment at {:#x} reads past the end of the image file",
                s.addr
            ));
        }
        if i > 0 && segs[i - 1].addr + segs[i - 1].memsz.div_ceil(PAGE) * PAGE > s.addr {
            return Err(format!("segments overlap at {:#x}", s.addr));
        }
    }
    let in_seg = |a: u64, len: u64, prot: &str| {
        patch
            .segments
            .iter()
            .any(|s| s.prot == prot && a >= s.addr && a + len <= s.addr + s.memsz)
    };
    for (slot, name) in &patch.imports {
        if slot % 8 != 0 || !in_seg(*slot, 8, "rw") {
            return Err(format!(
                "import slot for {name} at {slot:#x} is not in a writable segment"
            ));
        }
    }
    for (old, new) in &patch.table {
        if *old == 0 || !in_seg(*new, 1, "rx") {
            return Err(format!(
                "jump table entry {old:#x} -> {new:#x} points outside the patch's code"
            ));
        }
    }
    if let Some(eh) = patch.eh_frame {
        if !patch
            .segments
            .iter()
            .any(|s| eh >= s.addr && eh < s.addr + s.memsz)
        {
            return Err(format!("unwind table at {eh:#x} is outside the patch"));
        }
    }
    Ok(())
}

fn protect(addr: u64, len: u64, prot: c_int) -> Result<(), String> {
    let len = len.div_ceil(PAGE) * PAGE;
    // SAFETY: callers pass page-aligned ranges inside the region this module reserved,
    // which holds nothing but patch images.
    if unsafe { mprotect(addr as *mut c_void, len as usize, prot) } != 0 {
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
    let p = unsafe { dlsym(std::ptr::null_mut(), c.as_ptr()) };
    (!p.is_null()).then_some(p as u64)
}

/// Maps `patch` into `region`. On error nothing it mapped is reachable: the jump table is
/// published by the caller only after this returns Ok.
pub fn load(region: Region, patch: &Patch) -> Result<(), String> {
    let bytes = std::fs::read(&patch.image)
        .map_err(|e| format!("cannot read patch image {}: {e}", patch.image))?;
    validate(region, patch, bytes.len() as u64)?;
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
