;; id = "rust/mem-forget-guard"
;; title = "mem::forget of a guard"
;; cwe = ["CWE-667", "CWE-772"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["forget"]]
;; skip_tests = true
;; message = "Forgetting a guard skips its `Drop`, so the lock, borrow or permit it holds is never released and later users wait forever."
;; explanation = """
;; Lock guards (`MutexGuard`, `RwLock*Guard`), `RefCell` borrows, semaphore permits and tracing span
;; guards release what they hold in `Drop`. `mem::forget` skips `Drop`: the mutex stays locked
;; (every later `lock()` deadlocks), the `RefCell` stays borrowed (every later borrow panics), the
;; permit is lost for good.
;;
;; **Fix:** let the guard go out of scope, or call `drop(guard)` to release it early. If the
;; resource really must outlive the scope, keep the guard in a struct that owns it.
;;
;; **Trade-off:** none; `forget` on a guard is almost always a bug.
;; """
;; references = ["https://doc.rust-lang.org/std/mem/fn.forget.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn leak(m: &std::sync::Mutex<u32>) {
;;     let guard = m.lock().unwrap();
;;     std::mem::forget(guard); // finding
;; }
;; ''',
;; '''
;; fn hold(cell: &std::cell::RefCell<Vec<u8>>) {
;;     core::mem::forget(cell.borrow_mut()); // finding
;; }
;; ''',
;; '''
;; use std::mem::forget;
;; async fn take(sem: &tokio::sync::Semaphore) {
;;     let permit = sem.acquire().await.unwrap();
;;     forget(permit); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn release(m: &std::sync::Mutex<u32>) {
;;     let guard = m.lock().unwrap();
;;     drop(guard);
;; }
;; ''',
;; '''
;; fn into_raw(v: Vec<u8>) -> *mut u8 {
;;     let mut v = std::mem::ManuallyDrop::new(v);
;;     v.as_mut_ptr()
;; }
;; ''',
;; '''
;; fn extend(map: &mut Vec<u8>, items: &[u8]) {
;;     let guard = ScopeGuard::new(map, |m| m.clear());
;;     guard.extend_from_slice(items);
;;     // Success: keep the items, skip the clean-up.
;;     std::mem::forget(guard);
;; }
;; ''',
;; ]

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments . (_) @value)
  (#match? @function "^((std|core)::)?(mem::)?forget$")
  (#lock-guard? @value)) @finding
