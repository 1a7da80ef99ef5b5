;; id = "rust/transmute"
;; title = "mem::transmute"
;; cwe = ["CWE-843"]
;; severity = "medium"
;; precision = "medium"
;; anchors = [["transmute"]]
;; message = "`mem::transmute` reinterprets bits with no checks; a wrong size, alignment, lifetime or invalid bit pattern is undefined behaviour. Prefer a safe conversion."
;; explanation = """
;; `transmute` accepts any two types of the same size. It will turn a `&'a T` into a
;; `&'static T` (a dangling reference later, CWE-416), an integer into a reference or a `bool`
;; with an invalid value, or a `Vec<T>` into a `Vec<U>` with the wrong layout. The compiler cannot
;; help, and the bug often only shows up under optimisation.
;;
;; **Fix:** use the safe conversion for the case at hand: `f32::from_bits`/`to_bits`,
;; `u32::from_ne_bytes`, `as` casts for numbers and pointers, `bytemuck::cast` for plain data,
;; `ptr::cast` for raw pointers; for lifetime changes, restructure ownership (`Arc`, owned data).
;; Keep a remaining `transmute` behind a `// SAFETY:` comment and a turbofish naming both types.
;;
;; **Trade-off:** `bytemuck` adds a dependency and requires `Pod` types, which is exactly the proof
;; `transmute` skips.
;; """
;; references = ["https://doc.rust-lang.org/std/mem/fn.transmute.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn extend<'a>(s: &'a str) -> &'static str {
;;     // SAFETY: none; this is the bug.
;;     unsafe { std::mem::transmute(s) } // finding
;; }
;; ''',
;; '''
;; fn bits(x: f32) -> u32 {
;;     // SAFETY: f32 and u32 have the same size.
;;     unsafe { core::mem::transmute::<f32, u32>(x) } // finding
;; }
;; ''',
;; '''
;; use std::mem::transmute;
;; fn callback(addr: usize) -> fn() {
;;     // SAFETY: the caller promises addr is a function.
;;     unsafe { transmute(addr) } // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn bits(x: f32) -> u32 {
;;     x.to_bits()
;; }
;; ''',
;; '''
;; fn word(bytes: [u8; 4]) -> u32 {
;;     u32::from_ne_bytes(bytes)
;; }
;; ''',
;; '''
;; /// Explains why `transmute` is not used here.
;; fn cast(p: *const u8) -> *const u32 {
;;     p.cast()
;; }
;; ''',
;; ]

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  (#match? @function "^((std|core)::)?(mem::)?transmute$")) @finding

(call_expression
  function: (generic_function function: [(scoped_identifier) (identifier)] @function)
  (#match? @function "^((std|core)::)?(mem::)?transmute$")) @finding
