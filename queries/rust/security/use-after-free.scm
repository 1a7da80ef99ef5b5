;; id = "rust/use-after-free"
;; title = "Pointer used after it was freed, or while null"
;; cwe = ["CWE-416", "CWE-476", "CWE-825"]
;; severity = "high"
;; precision = "medium"
;; anchors = [["dealloc", "free", "drop_in_place", "from_raw", "null"]]
;; message = "This pointer is dereferenced after the memory it points to was freed (or while it is null); the read or write hits memory the allocator may have handed to someone else."
;; explanation = """
;; After `std::alloc::dealloc(p, layout)`, `libc::free(p)`, `ptr::drop_in_place(p)` or dropping the
;; `Box` that `Box::from_raw(p)` rebuilt, `p` still holds the old address, but the memory belongs
;; to the allocator again: reading it returns whatever was stored there next, and writing it
;; corrupts another allocation — the classic use-after-free. A pointer from `ptr::null()` that is
;; dereferenced without a check crashes at best. The rule reports a dereference (`*p`, `p.read()`
;; through `*`) in the same function after such a statement, unless `p` was reassigned or checked
;; with `is_null()` in between.
;;
;; **Fix:** finish every use before freeing, or set the pointer to null right after freeing and
;; check it; better, keep ownership in a `Box`, `Vec` or `Rc` so the compiler tracks it.
;;
;; **Trade-off:** none; the fix only moves or removes code.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/416.html", "https://cwe.mitre.org/data/definitions/476.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn once() -> u8 {
;;     let layout = std::alloc::Layout::new::<u8>();
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe {
;;         let p = std::alloc::alloc(layout);
;;         std::alloc::dealloc(p, layout);
;;         *p // finding
;;     }
;; }
;; ''',
;; '''
;; fn twice(n: usize) -> u8 {
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe {
;;         let p = libc::malloc(n) as *mut u8;
;;         libc::free(p as *mut libc::c_void);
;;         let first = *p; // finding
;;         first
;;     }
;; }
;; ''',
;; '''
;; fn head(list: *mut Node) -> u32 {
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe {
;;         let node = Box::from_raw(list);
;;         drop(node);
;;         (*list).value // finding
;;     }
;; }
;; ''',
;; '''
;; fn nothing() -> u32 {
;;     let p: *const u32 = std::ptr::null();
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe { *p } // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn once() -> u8 {
;;     let layout = std::alloc::Layout::new::<u8>();
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe {
;;         let p = std::alloc::alloc(layout);
;;         *p = 7;
;;         let v = *p;
;;         std::alloc::dealloc(p, layout);
;;         v
;;     }
;; }
;; ''',
;; '''
;; fn twice(n: usize) -> bool {
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe {
;;         let mut p = libc::malloc(n) as *mut u8;
;;         libc::free(p as *mut libc::c_void);
;;         p = libc::malloc(n) as *mut u8;
;;         *p == 0
;;     }
;; }
;; ''',
;; '''
;; fn maybe(p: *const u32) -> u32 {
;;     let q: *const u32 = std::ptr::null();
;;     let q = if q.is_null() { p } else { q };
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe { *q }
;; }
;; ''',
;; '''
;; fn checked() -> u32 {
;;     let p: *const u32 = std::ptr::null();
;;     if p.is_null() {
;;         return 0;
;;     }
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe { *p }
;; }
;; ''',
;; ]



((block (unary_expression "*" (identifier) @ptr) @finding) @scope
  (#freed-or-null? @ptr @scope))

((block (call_expression function: (field_expression value: (identifier) @ptr field: (field_identifier) @method)) @finding
  (#any-of? @method "read" "read_volatile" "read_unaligned" "write" "write_volatile" "write_unaligned" "as_ref" "as_mut")) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (unary_expression "*" (identifier) @ptr) @finding)) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (call_expression function: (field_expression value: (identifier) @ptr field: (field_identifier) @method)) @finding)
  (#any-of? @method "read" "read_volatile" "read_unaligned" "write" "write_volatile" "write_unaligned" "as_ref" "as_mut")) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (_ (unary_expression "*" (identifier) @ptr) @finding))) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (_ (call_expression function: (field_expression value: (identifier) @ptr field: (field_identifier) @method)) @finding))
  (#any-of? @method "read" "read_volatile" "read_unaligned" "write" "write_volatile" "write_unaligned" "as_ref" "as_mut")) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (_ (_ (unary_expression "*" (identifier) @ptr) @finding)))) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (_ (_ (call_expression function: (field_expression value: (identifier) @ptr field: (field_identifier) @method)) @finding)))
  (#any-of? @method "read" "read_volatile" "read_unaligned" "write" "write_volatile" "write_unaligned" "as_ref" "as_mut")) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (_ (_ (_ (unary_expression "*" (identifier) @ptr) @finding))))) @scope
  (#freed-or-null? @ptr @scope))

((block (_ (_ (_ (_ (call_expression function: (field_expression value: (identifier) @ptr field: (field_identifier) @method)) @finding))))
  (#any-of? @method "read" "read_volatile" "read_unaligned" "write" "write_volatile" "write_unaligned" "as_ref" "as_mut")) @scope
  (#freed-or-null? @ptr @scope))
