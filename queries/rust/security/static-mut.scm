;; id = "rust/static-mut"
;; title = "Mutable static"
;; cwe = ["CWE-362"]
;; severity = "low"
;; precision = "high"
;; anchors = [["static"], ["mut"]]
;; message = "`static mut` can be read and written from any thread without synchronisation; use an atomic, a `Mutex` or a `OnceLock`."
;; explanation = '''
;; Every access to a `static mut` is `unsafe` because nothing stops two threads from touching it
;; at once, and even a shared reference to it is undefined behaviour while someone else writes.
;; Rust 2024 rejects references to `static mut` outright.
;;
;; **Fix:** use `AtomicU32` and friends for counters and flags, `Mutex`/`RwLock` for data, or
;; `OnceLock`/`LazyLock` for values set once. **Trade-off:** a lock costs a few nanoseconds per
;; access; atomics are free on most platforms for word-sized values.
;; '''
;; references = ["https://doc.rust-lang.org/edition-guide/rust-2024/static-mut-references.html"]
;; [examples]
;; vulnerable = [
;; '''
;; static mut COUNTER: u32 = 0; // finding
;; ''',
;; '''
;; fn f() {
;;     static mut CACHE: Option<String> = None; // finding
;; }
;; ''',
;; '''
;; pub static mut CONFIG: [u8; 4] = [0; 4]; // finding
;; ''',
;; ]
;; safe = [
;; '''
;; static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
;; ''',
;; '''
;; static CACHE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
;; ''',
;; '''
;; fn f() { let mut counter = 0; counter += 1; }
;; ''',
;; ]

((static_item (mutable_specifier)) @finding)
