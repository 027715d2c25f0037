//! The jump table (old function address -> newest address) and patch handlers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, RwLock};

type Handler = Box<dyn Fn() + Send + Sync>;

static START: Once = Once::new();
static APPLIED: AtomicUsize = AtomicUsize::new(0);
static HANDLED: AtomicUsize = AtomicUsize::new(0);
static TABLE: RwLock<Option<HashMap<usize, usize>>> = RwLock::new(None);
static HANDLERS: Mutex<Vec<Handler>> = Mutex::new(Vec::new());

/// Connects to the engine once, if the process was launched by it.
pub fn ensure_started() {
    START.call_once(crate::channel::start_if_launched_by_engine);
}

pub fn any_patch_applied() -> bool {
    APPLIED.load(Ordering::Acquire) > 0
}

pub fn patches_applied() -> usize {
    APPLIED.load(Ordering::Acquire)
}

/// The newest address of the function whose original (or any earlier) address is `addr`.
pub fn current(addr: usize) -> Option<usize> {
    let table = TABLE.read().unwrap_or_else(|e| e.into_inner());
    table.as_ref().and_then(|t| t.get(&addr).copied())
}

/// Publishes a patch's entries. Called only after the patch's code is mapped executable.
pub fn publish(entries: &[(usize, usize)]) {
    {
        let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
        let table = table.get_or_insert_with(HashMap::new);
        for &(old, new) in entries {
            table.insert(old, new);
        }
    }
    APPLIED.fetch_add(1, Ordering::AcqRel);
}

pub fn add_handler(handler: Handler) {
    HANDLERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(handler);
}

/// Runs the registered handlers once for every patch applied since they last ran.
pub fn run_pending_handlers() {
    let applied = APPLIED.load(Ordering::Acquire);
    let handled = HANDLED.load(Ordering::Acquire);
    if applied == handled
        || HANDLED
            .compare_exchange(handled, applied, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return;
    }
    let handlers = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
    for handler in handlers.iter() {
        handler();
    }
}
