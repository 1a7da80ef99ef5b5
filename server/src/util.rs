//! Small helpers every module shares.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking over a poisoned one. A panic in a handler is caught and answered; the
/// state such a lock guards is kept consistent by single-call mutations, so it is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
