//! Where the main program was loaded, found without any symbol of our own.
//!
//! Linked into the app, the runtime reports `hotline_aslr_anchor`'s address (its
//! link-time address is in the executable's symbol table). Preloaded as a library
//! (`LD_PRELOAD`, the engine's *injected* mode), the anchor lives in the library, so the
//! runtime reports the executable's load bias instead, from the auxiliary vector the
//! kernel hands every process: `AT_PHDR` (where the program headers are mapped) minus the
//! `PT_PHDR` header's `p_vaddr` (where they are at link time). The same headers say
//! which mode we are in: the anchor lies inside the main program's segments only when
//! the runtime is linked into it.

use crate::sys::{self, Elf64Phdr};

/// How the runtime came into the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Linked into the executable (a dependency of the app): safe points work.
    Linked,
    /// Preloaded into an app that does not link it: entry jumps only.
    Injected,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Linked => "linked",
            Mode::Injected => "injected",
        }
    }
}

/// The main program as loaded.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// Runtime address minus link-time address of everything in the executable.
    pub bias: u64,
    /// The runtime address of its entry point: a place in its code.
    pub entry: u64,
    pub mode: Mode,
}

/// The main program, or None when the auxiliary vector does not describe it.
pub fn main_program() -> Option<Program> {
    // SAFETY: getauxval only reads the auxiliary vector the kernel set up; it returns 0
    // for a key it does not hold.
    let (phdr, phnum, entry) = unsafe {
        (
            sys::getauxval(sys::AT_PHDR),
            sys::getauxval(sys::AT_PHNUM),
            sys::getauxval(sys::AT_ENTRY),
        )
    };
    if phdr == 0 || phnum == 0 || entry == 0 {
        return None;
    }
    // SAFETY: AT_PHDR is the address of the main program's AT_PHNUM program headers,
    // which the loader mapped (read-only) for the life of the process.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const Elf64Phdr, phnum as usize) };
    let own = crate::hotline_aslr_anchor as *const () as u64;
    locate(headers, phdr, entry, own)
}

/// The program described by its `headers` (mapped at `phdr`), and whether `own` (an
/// address of the runtime's code) lies inside it.
fn locate(headers: &[Elf64Phdr], phdr: u64, entry: u64, own: u64) -> Option<Program> {
    let bias = phdr.checked_sub(headers.iter().find(|h| h.p_type == sys::PT_PHDR)?.p_vaddr)?;
    let inside = headers.iter().any(|h| {
        h.p_type == sys::PT_LOAD
            && bias
                .checked_add(h.p_vaddr)
                .and_then(|start| Some((start, start.checked_add(h.p_memsz)?)))
                .is_some_and(|(start, end)| own >= start && own < end)
    });
    let mode = if inside { Mode::Linked } else { Mode::Injected };
    Some(Program { bias, entry, mode })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(p_type: u32, p_vaddr: u64, p_memsz: u64) -> Elf64Phdr {
        Elf64Phdr {
            p_type,
            p_flags: 0,
            p_offset: 0,
            p_vaddr,
            p_paddr: p_vaddr,
            p_filesz: p_memsz,
            p_memsz,
            p_align: 4096,
        }
    }

    #[test]
    fn the_test_binary_links_the_runtime() {
        let program = main_program().unwrap();
        assert_eq!(program.mode, Mode::Linked);
        // The anchor's runtime address minus the bias is its link-time address: inside
        // the executable's first gigabytes, never a library's address.
        let anchor = crate::hotline_aslr_anchor as *const () as u64;
        assert!(anchor - program.bias < 1 << 32, "{anchor:#x} {program:?}");
        assert!(program.entry > program.bias);
    }

    #[test]
    fn the_bias_is_where_the_headers_are_minus_where_they_were_linked() {
        let headers = [
            header(sys::PT_PHDR, 0x40, 0x2a0),
            header(sys::PT_LOAD, 0, 0x9000),
        ];
        let base = 0x5555_0000_0000;
        let linked = locate(&headers, base + 0x40, base + 0x1000, base + 0x8fff).unwrap();
        assert_eq!((linked.bias, linked.mode), (base, Mode::Linked));
        let injected = locate(&headers, base + 0x40, base + 0x1000, base + 0x9000).unwrap();
        assert_eq!(injected.mode, Mode::Injected);
        assert!(locate(&headers[1..], base + 0x40, base, base).is_none());
        assert!(locate(&headers, 0x10, base, base).is_none());
    }
}
