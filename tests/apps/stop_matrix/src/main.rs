//! A test app for the quiet stop: one thread blocked in each system call that a signal
//! handler (or a stop signal) makes fail with EINTR, each counting the EINTRs it sees.
//! Every thread prints `NAME v=VERSION eintr=COUNT` when either changes; `version()` is
//! what tests edit, so `v=` says which code the thread runs. No safe point anywhere: the
//! new code arrives through entry jumps only.
//!
//! `stop_matrix` runs the matrix (plus a thread that blocks every signal); `stop_matrix
//! sigprof` runs a busy loop under a 1 kHz SIGPROF timer whose handler calls `version()`;
//! `stop_matrix slow` prints `slow v=VERSION` every 50 ms (a debugger's breakpoint in
//! `version()` is hit rarely); `stop_matrix reset` does that and resets every real-time
//! signal to SIG_DFL, over and over.
use std::ffi::{c_int, c_long, c_void};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

const WAIT: Duration = Duration::from_millis(200);
const WAIT_MS: c_int = 200;
const EINTR: c_int = 4;

#[inline(never)]
fn version() -> u64 {
    std::hint::black_box(1)
}

#[repr(C)]
struct Timespec {
    sec: c_long,
    nsec: c_long,
}

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

#[repr(C)]
struct EpollEvent {
    events: u32,
    data: u64,
}

#[repr(C)]
struct Itimerval {
    interval: [c_long; 2],
    value: [c_long; 2],
}

extern "C" {
    fn __errno_location() -> *mut c_int;
    fn nanosleep(req: *const Timespec, rem: *mut Timespec) -> c_int;
    fn clock_nanosleep(clock: c_int, flags: c_int, req: *const Timespec, rem: *mut Timespec) -> c_int;
    fn poll(fds: *mut PollFd, n: u64, timeout: c_int) -> c_int;
    fn select(n: c_int, r: *mut [u64; 16], w: *mut [u64; 16], e: *mut [u64; 16], t: *mut [c_long; 2]) -> c_int;
    fn epoll_create1(flags: c_int) -> c_int;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut EpollEvent) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut EpollEvent, max: c_int, timeout: c_int) -> c_int;
    fn sigtimedwait(set: *const [u64; 16], info: *mut [u8; 128], timeout: *const Timespec) -> c_int;
    fn sigemptyset(set: *mut [u64; 16]) -> c_int;
    fn sigfillset(set: *mut [u64; 16]) -> c_int;
    fn sigaddset(set: *mut [u64; 16], sig: c_int) -> c_int;
    fn pthread_sigmask(how: c_int, set: *const [u64; 16], old: *mut [u64; 16]) -> c_int;
    fn syscall(n: c_long, ...) -> c_long;
    fn accept(fd: c_int, addr: *mut c_void, len: *mut u32) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
    fn close(fd: c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn setitimer(which: c_int, new: *const Itimerval, old: *mut Itimerval) -> c_int;
    fn __libc_current_sigrtmin() -> c_int;
    fn __libc_current_sigrtmax() -> c_int;
}

fn errno() -> c_int {
    // SAFETY: this thread's errno slot.
    unsafe { *__errno_location() }
}

fn timespec() -> Timespec {
    Timespec { sec: 0, nsec: WAIT.as_nanos() as c_long }
}

/// Runs `wait` forever in a thread named `name`; `wait` returns whether it failed with EINTR.
fn blocked(name: &'static str, mut wait: impl FnMut() -> bool + Send + 'static) {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut eintr = 0u64;
            let mut shown = None;
            loop {
                if wait() {
                    eintr += 1;
                }
                let now = (version(), eintr);
                if shown != Some(now) {
                    println!("{name} v={} eintr={}", now.0, now.1);
                    shown = Some(now);
                }
            }
        })
        .unwrap();
}

fn interrupted(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Interrupted
}

fn matrix() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(tcp.local_addr().unwrap()).unwrap();
    let (mut server, _) = tcp.accept().unwrap();
    server.set_read_timeout(Some(WAIT)).unwrap();
    blocked("tcp-read", move || server.read(&mut [0; 64]).is_err_and(|e| interrupted(&e)));

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    blocked("udp-recv", move || udp.recv_from(&mut [0; 64]).is_err_and(|e| interrupted(&e)));

    let (unix, _peer) = UnixDatagram::pair().unwrap();
    unix.set_read_timeout(Some(WAIT)).unwrap();
    blocked("unix-recv", move || {
        let _keep = &_peer;
        unix.recv(&mut [0; 64]).is_err_and(|e| interrupted(&e))
    });

    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut writer = TcpStream::connect(sink.local_addr().unwrap()).unwrap();
    let (_never_read, _) = sink.accept().unwrap();
    writer.set_write_timeout(Some(WAIT)).unwrap();
    blocked("tcp-write", move || {
        let _keep = &_never_read;
        writer.write(&[0; 65536]).is_err_and(|e| interrupted(&e))
    });

    let (quiet, _quiet_in) = std::io::pipe().unwrap();
    let quiet_fd = quiet.as_raw_fd();
    // SAFETY: plain system calls on descriptors this function owns for the process's life.
    let epfd = unsafe { epoll_create1(0) };
    let mut ev = EpollEvent { events: 1, data: 0 };
    unsafe { epoll_ctl(epfd, 1, quiet_fd, &mut ev) };
    blocked("epoll", move || {
        let mut out = EpollEvent { events: 0, data: 0 };
        unsafe { epoll_wait(epfd, &mut out, 1, WAIT_MS) == -1 && errno() == EINTR }
    });
    blocked("poll", move || {
        let mut fd = PollFd { fd: quiet_fd, events: 1, revents: 0 };
        unsafe { poll(&mut fd, 1, WAIT_MS) == -1 && errno() == EINTR }
    });
    blocked("select", move || {
        let mut set = [0u64; 16];
        set[quiet_fd as usize / 64] |= 1 << (quiet_fd % 64);
        let mut tv = [0, WAIT.as_micros() as c_long];
        let nfds = quiet_fd + 1;
        let null = std::ptr::null_mut();
        unsafe { select(nfds, &mut set, null, null, &mut tv) == -1 && errno() == EINTR }
    });
    blocked("nanosleep", || unsafe {
        nanosleep(&timespec(), std::ptr::null_mut()) == -1 && errno() == EINTR
    });
    blocked("clock-nanosleep", || unsafe {
        clock_nanosleep(1, 0, &timespec(), std::ptr::null_mut()) == EINTR
    });
    blocked("sigtimedwait", || {
        let mut set = [0u64; 16];
        unsafe {
            sigemptyset(&mut set);
            sigaddset(&mut set, 12); // SIGUSR2, blocked here, never sent
            pthread_sigmask(0, &set, std::ptr::null_mut());
            sigtimedwait(&set, &mut [0; 128], &timespec()) == -1 && errno() == EINTR
        }
    });
    static WORD: AtomicU32 = AtomicU32::new(0);
    blocked("futex", || unsafe {
        // FUTEX_WAIT_PRIVATE while WORD is 0, which it always is: only the timeout ends it.
        syscall(202, WORD.as_ptr(), 128, 0, &timespec() as *const Timespec) == -1 && errno() == EINTR
    });

    let door = TcpListener::bind("127.0.0.1:0").unwrap();
    let door_addr = door.local_addr().unwrap();
    blocked("accept", move || {
        let fd = unsafe { accept(door.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut()) };
        if fd >= 0 {
            unsafe { close(fd) };
        }
        fd == -1 && errno() == EINTR
    });
    let (bell, mut bell_in) = std::io::pipe().unwrap();
    blocked("pipe-read", move || unsafe {
        read(bell.as_raw_fd(), [0u8; 1].as_mut_ptr().cast(), 1) == -1 && errno() == EINTR
    });
    blocked("waitpid", || {
        let child = std::process::Command::new("sleep").arg("0.2").spawn().unwrap();
        let mut status = 0;
        let eintr = unsafe { waitpid(child.id() as c_int, &mut status, 0) } == -1 && errno() == EINTR;
        if eintr {
            let _ = unsafe { waitpid(child.id() as c_int, &mut status, 0) };
        }
        eintr
    });
    blocked("masked", || {
        // Blocks every signal on itself, as librdkafka's threads do.
        let mut all = [0u64; 16];
        unsafe {
            sigfillset(&mut all);
            pthread_sigmask(0, &all, std::ptr::null_mut());
        }
        std::thread::sleep(WAIT);
        false
    });
    // The main thread wakes the threads that have no timeout.
    loop {
        std::thread::sleep(WAIT);
        drop(TcpStream::connect(door_addr));
        let _ = bell_in.write_all(b"!");
    }
}

static PROFILED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigprof(_: c_int) {
    PROFILED.fetch_add(version(), Ordering::Relaxed);
}

fn sigprof() {
    // SAFETY: the handler only adds to an atomic; the timer fires every 1 ms of CPU time.
    unsafe {
        signal(27, on_sigprof as extern "C" fn(c_int) as usize); // SIGPROF
        let tick = Itimerval { interval: [0, 1000], value: [0, 1000] };
        setitimer(2, &tick, std::ptr::null_mut()); // ITIMER_PROF
    }
    let mut shown = (0, false);
    loop {
        let mut sum = 0u64;
        for _ in 0..10_000 {
            sum = sum.wrapping_add(std::hint::black_box(version()));
        }
        let now = (sum / 10_000, PROFILED.load(Ordering::Relaxed) > 0);
        if now != shown {
            println!("busy v={} profiled={}", now.0, now.1);
            shown = now;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn reset_signals() {
    std::thread::spawn(|| loop {
        // SAFETY: resets dispositions only; no handler is running on them.
        unsafe {
            for sig in __libc_current_sigrtmin()..=__libc_current_sigrtmax() {
                signal(sig, 0); // SIG_DFL
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    });
}

fn slow() {
    let mut shown = 0;
    loop {
        let v = version();
        if v != shown {
            println!("slow v={v}");
            shown = v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("sigprof") => sigprof(),
        Some("slow") => slow(),
        Some("reset") => {
            reset_signals();
            slow()
        }
        _ => matrix(),
    }
}
