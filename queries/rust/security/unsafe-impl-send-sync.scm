;; id = "rust/unsafe-impl-send-sync"
;; title = "unsafe impl Send/Sync without a safety argument"
;; cwe = ["CWE-362"]
;; severity = "low"
;; precision = "high"
;; anchors = [["unsafe"], ["send", "sync"]]
;; message = "`unsafe impl Send`/`Sync` overrides the compiler's thread-safety check; without a `// SAFETY:` comment nobody can tell why this type is safe to share across threads."
;; explanation = """
;; The compiler derives `Send` and `Sync` from a type's fields; an `unsafe impl` says "trust me" for
;; types that contain raw pointers, `Cell`s or FFI handles. If the type is not in fact thread-safe,
;; two threads race on it (data races are undefined behaviour), and nothing else will catch it.
;;
;; **Fix:** prefer fields that are already `Send`/`Sync` (`Arc<Mutex<T>>`, atomics). If the impl is
;; needed, write a `// SAFETY:` comment above it that says which invariant makes sharing sound
;; (for example: "the pointer is owned and only dereferenced under `self.lock`").
;;
;; **Trade-off:** none; the comment is the review trail.
;; """
;; references = ["https://doc.rust-lang.org/nomicon/send-and-sync.html"]
;; [examples]
;; vulnerable = [
;; '''
;; struct Handle(*mut u8);
;; unsafe impl Send for Handle {} // finding
;; ''',
;; '''
;; struct Shared { ptr: *const u32 }
;; unsafe impl std::marker::Sync for Shared {} // finding
;; ''',
;; '''
;; struct Pool<T> { items: *mut T }
;; /// A pool of items.
;; unsafe impl<T> Send for Pool<T> {} // finding
;; ''',
;; ]
;; safe = [
;; '''
;; struct Handle(*mut u8);
;; // SAFETY: the pointer is owned by Handle and never aliased.
;; unsafe impl Send for Handle {}
;; ''',
;; '''
;; struct Plain(u32);
;; impl Clone for Plain { fn clone(&self) -> Self { Plain(self.0) } }
;; ''',
;; '''
;; struct Shared { ptr: *const u32 }
;; /// Shared across threads.
;; // SAFETY: the pointee is immutable after construction.
;; unsafe impl Sync for Shared {}
;; ''',
;; ]

((impl_item
  trait: [(type_identifier) (scoped_type_identifier)] @trait) @finding
  (#match? @trait "(^|::)(Send|Sync)$")
  (#match? @finding "^unsafe")
  (#no-safety-comment? @finding))
