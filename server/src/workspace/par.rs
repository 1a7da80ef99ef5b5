//! The one parallel per-file worker: a fixed set of threads takes items one at a time from a
//! shared counter, checks for cancellation before each, and hands every result on as soon as it
//! is ready.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// How many workers to run for a setting where 0 means "one per core".
pub fn workers(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
    .clamp(1, 64)
}

/// Runs `work` on each of `items` on `workers` threads (at least one, at most one per item),
/// calling `cancelled` before every item and stopping the thread that sees `true`. Each thread
/// starts from `init()` (a parser, a buffer) and lends it to every item it takes. `on_result`
/// gets `(index in items, result)` on the worker thread as soon as an item is done, so a caller
/// can stream results or collect them. Returns how many items were processed.
pub fn par_map<T, S, R>(
    items: &[T],
    workers: usize,
    cancelled: &(dyn Fn() -> bool + Sync),
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> R + Sync,
    on_result: impl Fn(usize, R) + Sync,
) -> usize
where
    T: Sync,
{
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let threads = workers.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut state = init();
                while !cancelled() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(&mut state, item);
                    done.fetch_add(1, Ordering::Relaxed);
                    on_result(i, result);
                }
            });
        }
    });
    done.into_inner()
}

/// [`par_map`] without cancellation or per-thread state, collecting the results in the order
/// of `items`.
pub fn par_collect<T, R>(items: &[T], workers: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    par_map(
        items,
        workers,
        &|| false,
        || (),
        |_, item| work(item),
        |i, result| {
            results
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((i, result));
        },
    );
    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[test]
    fn results_come_back_in_item_order_on_several_workers() {
        let items: Vec<u32> = (0..100).collect();
        let squares = par_collect(&items, 4, |n| n * n);
        assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert!(par_collect(&[] as &[u32], 4, |n| *n).is_empty());
    }

    #[test]
    fn cancellation_is_checked_before_every_item() {
        let items: Vec<u32> = (0..10).collect();
        let stop = AtomicBool::new(false);
        let seen = Mutex::new(Vec::new());
        // One worker, cancelled by the third result: exactly three items are processed.
        let processed = par_map(
            &items,
            1,
            &|| stop.load(Ordering::SeqCst),
            || (),
            |_, n| *n,
            |i, n| {
                let mut seen = seen.lock().expect("seen");
                seen.push((i, n));
                if seen.len() == 3 {
                    stop.store(true, Ordering::SeqCst);
                }
            },
        );
        assert_eq!(processed, 3);
        assert_eq!(seen.into_inner().expect("seen"), [(0, 0), (1, 1), (2, 2)]);
        // Cancelled before the start: nothing is processed.
        let processed = par_map(
            &items,
            2,
            &|| true,
            || (),
            |_, _| panic!("no item after cancellation"),
            |_, ()| {},
        );
        assert_eq!(processed, 0);
    }

    #[test]
    fn each_worker_reuses_its_own_state() {
        let items: Vec<u32> = (0..50).collect();
        let inits = AtomicUsize::new(0);
        let processed = par_map(
            &items,
            3,
            &|| false,
            || {
                inits.fetch_add(1, Ordering::SeqCst);
                Vec::<u32>::new()
            },
            |seen, n| {
                seen.push(*n);
                seen.len()
            },
            |_, _| {},
        );
        assert_eq!(processed, 50);
        assert_eq!(inits.into_inner(), 3);
    }
}
