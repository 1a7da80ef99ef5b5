;; id = "rust/unsafe-without-safety-comment"
;; title = "unsafe block without a SAFETY comment"
;; cwe = ["CWE-710"]
;; severity = "info"
;; category = "lint"
;; precision = "high"
;; anchors = [["unsafe"]]
;; message = "This `unsafe` block has no `// SAFETY:` comment saying why it is sound."
;; explanation = """
;; An `unsafe` block is a proof obligation: the author promises the compiler that invariants it
;; cannot check hold here. The standard convention (and clippy's `undocumented_unsafe_blocks`) is a
;; `// SAFETY:` comment right above the block that states that argument, so reviewers can check it
;; and later changes can keep it true. This is a hint, not a vulnerability: the rule is in the `lint`
;; category, shown live as a hint and left out of `conductor scan` and SARIF unless
;; `--include-lints` (or `[security] lints = true`) asks for it.
;;
;; **Fix:** write the comment: `// SAFETY: idx < self.len was checked above`.
;;
;; **Trade-off:** none.
;; """
;; references = ["https://rust-lang.github.io/rust-clippy/master/index.html#undocumented_unsafe_blocks"]
;; [[fix]]
;; title = "Add a // SAFETY: comment"
;; insert_line_before = "// SAFETY: <why this is sound>"
;; [examples]
;; vulnerable = [
;; '''
;; fn get(v: &[u8], i: usize) -> u8 {
;;     unsafe { *v.get_unchecked(i) } // finding
;; }
;; ''',
;; '''
;; fn read(p: *const u32) -> u32 {
;;     let value = unsafe { p.read() }; // finding
;;     value
;; }
;; ''',
;; '''
;; fn call() {
;;     // Calls into C.
;;     unsafe { // finding
;;         libc_abort();
;;     }
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn get(v: &[u8], i: usize) -> u8 {
;;     // SAFETY: i < v.len() is checked by every caller.
;;     unsafe { *v.get_unchecked(i) }
;; }
;; ''',
;; '''
;; fn read(p: *const u32) -> u32 {
;;     unsafe { p.read() } // SAFETY: p comes from Box::into_raw and is valid.
;; }
;; ''',
;; '''
;; fn read(p: *const u32) -> u32 {
;;     let value = unsafe {
;;         // SAFETY: p comes from Box::into_raw and is valid.
;;         p.read()
;;     };
;;     value
;; }
;; ''',
;; ]

(unsafe_block "unsafe" @finding
  (#no-safety-comment? @finding))
