//! Hand-declared glibc entry points and Linux x86-64 constants (the runtime has no
//! dependencies), with safe wrappers for the raw system calls that cannot break memory
//! safety. Every wrapper is async-signal-safe: none allocates or takes a lock.

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;

pub const PROT_NONE: c_int = 0;
pub const PROT_READ: c_int = 1;
pub const PROT_WRITE: c_int = 2;
pub const PROT_EXEC: c_int = 4;
pub const MAP_PRIVATE: c_int = 0x02;
pub const MAP_ANONYMOUS: c_int = 0x20;
pub const MAP_NORESERVE: c_int = 0x4000;
pub const MAP_FIXED_NOREPLACE: c_int = 0x10_0000;
pub const PAGE: u64 = 4096;

pub const PT_LOAD: u32 = 1;
pub const PF_X: u32 = 1;
pub const PF_R: u32 = 4;

pub const SIG_DFL: usize = 0;
pub const SA_SIGINFO: c_int = 4;
pub const SA_ONSTACK: c_int = 0x0800_0000;
pub const SA_RESTART: c_int = 0x1000_0000;

pub const ESRCH: c_int = 3;

const SYS_RT_SIGACTION: c_long = 13;
const SYS_RT_SIGPROCMASK: c_long = 14;
const SYS_PRCTL: c_long = 157;
const SYS_GETTID: c_long = 186;
const SYS_MEMBARRIER: c_long = 324;
const PR_SET_PTRACER: c_long = 0x5961_6d61;
const PR_SET_PTRACER_ANY: c_long = -1;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: c_long = 32;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: c_long = 64;
const SA_RESTORER: u64 = 0x0400_0000;
const SIG_BLOCK: c_long = 0;
const SIG_SETMASK: c_long = 2;
const SYS_FUTEX: c_long = 202;
const SYS_GETDENTS64: c_long = 217;
const SYS_TGKILL: c_long = 234;
const SYS_OPENAT: c_long = 257;
const AT_FDCWD: c_long = -100;
const O_RDONLY_DIRECTORY_CLOEXEC: c_long = 0o200_000 | 0o2_000_000;
const FUTEX_WAIT_PRIVATE: c_long = 128;
const FUTEX_WAKE_PRIVATE: c_long = 129;

/// glibc's `sigset_t`: 1024 bits.
#[repr(C)]
pub struct SigSet(pub [u64; 16]);

/// glibc x86-64 `struct sigaction`: handler, mask, flags (then 4 bytes of padding), restorer.
#[repr(C)]
pub struct SigAction {
    pub handler: usize,
    pub mask: SigSet,
    pub flags: c_int,
    pub restorer: usize,
}

const _: () = assert!(std::mem::size_of::<SigAction>() == 152);

/// glibc's `struct dl_phdr_info`. Fields after `phnum` exist only when the `size` passed
/// with it says so (`DL_PHDR_INFO_SIZE`).
#[repr(C)]
pub struct DlPhdrInfo {
    pub addr: u64,
    pub name: *const c_char,
    pub phdr: *const Elf64Phdr,
    pub phnum: u16,
    pub adds: u64,
    pub subs: u64,
    pub tls_modid: usize,
    pub tls_data: *mut c_void,
}

pub const DL_PHDR_INFO_SIZE: usize = std::mem::size_of::<DlPhdrInfo>();
const _: () = assert!(DL_PHDR_INFO_SIZE == 64);

/// `getauxval` keys (elf.h): the main program's program headers, their count, its entry.
pub const AT_PHDR: std::ffi::c_ulong = 3;
pub const AT_PHNUM: std::ffi::c_ulong = 5;
pub const AT_ENTRY: std::ffi::c_ulong = 9;
/// The program header that describes the program headers themselves.
pub const PT_PHDR: u32 = 6;

/// `dlsym`'s pseudo-handle for "the next object after the caller's in search order".
pub const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;

#[repr(C)]
pub struct Elf64Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

pub type PhdrCallback = unsafe extern "C" fn(*mut DlPhdrInfo, usize, *mut c_void) -> c_int;

extern "C" {
    pub fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    pub fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int;
    pub fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    pub fn dl_iterate_phdr(callback: Option<PhdrCallback>, data: *mut c_void) -> c_int;
    pub fn getauxval(kind: std::ffi::c_ulong) -> std::ffi::c_ulong;
    pub fn sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int;
    pub fn sigfillset(set: *mut SigSet) -> c_int;
    pub fn __libc_current_sigrtmin() -> c_int;
    pub fn __libc_current_sigrtmax() -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
    fn __errno_location() -> *mut c_int;
}

/// This thread's `errno`.
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid while the thread lives.
    unsafe { *__errno_location() }
}

/// Sets this thread's `errno` (a signal handler restores the value it interrupted).
pub fn set_errno(value: c_int) {
    // SAFETY: as in errno(); the slot belongs to this thread only.
    unsafe { *__errno_location() = value }
}

/// The result of a raw system call: its value, or the errno it failed with.
fn check(ret: c_long) -> Result<c_long, c_int> {
    if ret == -1 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and touches no memory.
    unsafe { syscall(SYS_GETTID) as i32 }
}

/// Sends `sig` to thread `tid` of process `pid` (0 only checks that the thread exists).
pub fn tgkill(pid: i32, tid: i32, sig: c_int) -> Result<(), c_int> {
    // SAFETY: tgkill touches no memory of this process.
    check(unsafe {
        syscall(
            SYS_TGKILL,
            c_long::from(pid),
            c_long::from(tid),
            c_long::from(sig),
        )
    })
    .map(drop)
}

/// Sleeps while `word` still holds `expected` (or until a wake-up or a signal).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: the kernel only reads the 4-byte atomic `word`, which outlives the call; the
    // null timeout means "no timeout".
    unsafe {
        syscall(
            SYS_FUTEX,
            word.as_ptr() as c_long,
            FUTEX_WAIT_PRIVATE,
            c_long::from(expected),
            0 as c_long,
        );
    }
}

/// Wakes every thread waiting on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE reads no memory; the address only names the wait queue.
    unsafe {
        syscall(
            SYS_FUTEX,
            word.as_ptr() as c_long,
            FUTEX_WAKE_PRIVATE,
            c_long::from(i32::MAX),
        );
    }
}

/// Opens a directory for `getdents64` (closed when dropped: `close` takes no lock).
pub fn open_dir(path: &CStr) -> Result<OwnedFd, c_int> {
    // SAFETY: `path` is NUL-terminated and outlives the call; the kernel only reads it.
    let fd = check(unsafe {
        syscall(
            SYS_OPENAT,
            AT_FDCWD,
            path.as_ptr() as c_long,
            O_RDONLY_DIRECTORY_CLOEXEC,
        )
    })?;
    // SAFETY: openat just returned this descriptor, so nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as c_int) })
}

/// Reads directory entries (`linux_dirent64` records) into `buf`; 0 at the end.
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, c_int> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we borrow mutably.
    check(unsafe {
        syscall(
            SYS_GETDENTS64,
            c_long::from(fd.as_raw_fd()),
            buf.as_mut_ptr() as c_long,
            buf.len() as c_long,
        )
    })
    .map(|n| n as usize)
}

/// Executes CPUID, a serializing instruction: no instruction fetched before it runs after it.
pub fn serialize() {
    // Leaf 0 exists on every x86-64 processor; only the serializing matters here.
    let _ = core::arch::x86_64::__cpuid(0);
}

/// Lets any process of this user trace this one (Yama's `PR_SET_PTRACER`), so an engine
/// that re-attaches, not the app's parent, may still stop its threads quietly. Without
/// Yama the call fails with EINVAL and nothing is needed.
pub fn allow_any_tracer() -> Result<(), c_int> {
    // SAFETY: PR_SET_PTRACER reads no memory of this process.
    check(unsafe { syscall(SYS_PRCTL, PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0 as c_long) }).map(drop)
}

/// Registers the process for `membarrier_sync_core` (once, at start).
pub fn membarrier_register_sync_core() -> Result<(), c_int> {
    // SAFETY: membarrier registration reads no memory.
    check(unsafe {
        syscall(
            SYS_MEMBARRIER,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
            0 as c_long,
        )
    })
    .map(drop)
}

/// Makes every thread of the process execute a core serializing instruction before it runs
/// user code again (membarrier(2), PRIVATE_EXPEDITED_SYNC_CORE): the executing side of the
/// cross-modifying-code protocol, for code another process wrote.
pub fn membarrier_sync_core() -> Result<(), c_int> {
    // SAFETY: membarrier reads no memory.
    check(unsafe {
        syscall(
            SYS_MEMBARRIER,
            MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
            0 as c_long,
        )
    })
    .map(drop)
}

/// The kernel's view of a signal's action (`struct kernel_sigaction` on x86-64).
#[repr(C)]
struct KernelSigAction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The return addresses the kernel gives the signal frames of handled signals (glibc's
/// `__restore_rt`, and any an app installed itself): how a signal frame is found on a stack.
pub fn signal_restorers() -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for sig in 1..=64 {
        let mut act = KernelSigAction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: with a null new action the kernel only writes the current one into `act`,
        // a local of the kernel's layout; the sigset size is the kernel's 8 bytes.
        let ret = unsafe {
            syscall(
                SYS_RT_SIGACTION,
                c_long::from(sig),
                0 as c_long,
                &mut act as *mut KernelSigAction as c_long,
                8 as c_long,
            )
        };
        let handled = act.handler > 1; // neither SIG_DFL (0) nor SIG_IGN (1)
        if ret == 0
            && handled
            && act.flags & SA_RESTORER != 0
            && !out.contains(&(act.restorer as u64))
        {
            out.push(act.restorer as u64);
        }
    }
    out
}

/// Blocks every signal on this thread; returns the mask to restore.
pub fn block_all_signals() -> u64 {
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: the kernel reads `all` and writes `old`, two locals of its 8-byte sigset size.
    unsafe {
        syscall(
            SYS_RT_SIGPROCMASK,
            SIG_BLOCK,
            &all as *const u64 as c_long,
            &mut old as *mut u64 as c_long,
            8 as c_long,
        );
    }
    old
}

/// Restores a mask `block_all_signals` returned.
pub fn restore_signals(mask: u64) {
    // SAFETY: the kernel only reads `mask`, a local of its 8-byte sigset size.
    unsafe {
        syscall(
            SYS_RT_SIGPROCMASK,
            SIG_SETMASK,
            &mask as *const u64 as c_long,
            0 as c_long,
            8 as c_long,
        );
    }
}
