;; id = "rust/uninit-assume-init"
;; title = "Uninitialised memory read"
;; cwe = ["CWE-908"]
;; severity = "high"
;; precision = "high"
;; anchors = [["uninit"]]
;; message = "`MaybeUninit::uninit().assume_init()` (or `mem::uninitialized`) claims memory is initialised when it is not; reading it is undefined behaviour."
;; explanation = """
;; `assume_init` is a promise that every byte has been written. Calling it directly on
;; `MaybeUninit::uninit()` breaks that promise at once: integers and floats read garbage, and for
;; types with invalid bit patterns (`bool`, references, enums) the compiler may assume impossible
;; values and miscompile. `mem::uninitialized` is deprecated for the same reason.
;;
;; **Fix:** initialise the value (`T::default()`, `[0u8; N]`), or write through
;; `MaybeUninit::as_mut_ptr()`/`write()` and call `assume_init` only after every field is set. The
;; array-of-`MaybeUninit` idiom (`MaybeUninit::<[MaybeUninit<T>; N]>::uninit().assume_init()`) is
;; sound and not reported.
;;
;; **Trade-off:** zeroing costs a memset; measure before reaching for uninitialised memory.
;; """
;; references = ["https://doc.rust-lang.org/std/mem/union.MaybeUninit.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn buffer() -> [u8; 1024] {
;;     // SAFETY: wrong, nothing was written.
;;     unsafe { std::mem::MaybeUninit::uninit().assume_init() } // finding
;; }
;; ''',
;; '''
;; use std::mem::MaybeUninit;
;; fn flag() -> bool {
;;     // SAFETY: wrong.
;;     unsafe { MaybeUninit::<bool>::uninit().assume_init() } // finding
;; }
;; ''',
;; '''
;; fn legacy() -> u64 {
;;     // SAFETY: wrong.
;;     unsafe { std::mem::uninitialized() } // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use std::mem::MaybeUninit;
;; fn slots() -> [MaybeUninit<u8>; 16] {
;;     // SAFETY: an array of MaybeUninit needs no initialisation.
;;     unsafe { MaybeUninit::<[MaybeUninit<u8>; 16]>::uninit().assume_init() }
;; }
;; ''',
;; '''
;; use std::mem::MaybeUninit;
;; fn value() -> u64 {
;;     let mut slot = MaybeUninit::<u64>::uninit();
;;     slot.write(7);
;;     // SAFETY: written on the line above.
;;     unsafe { slot.assume_init() }
;; }
;; ''',
;; '''
;; fn buffer() -> [u8; 1024] {
;;     [0u8; 1024]
;; }
;; ''',
;; ]

((call_expression
  function: (field_expression
    value: (call_expression function: (scoped_identifier) @constructor)
    field: (field_identifier) @method)) @finding
  (#match? @constructor "(^|::)MaybeUninit(::<.*>)?::uninit$")
  (#eq? @method "assume_init")
  (#uninit-of-initialised-type? @finding))

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  (#match? @function "^((std|core)::)?(mem::)?uninitialized$")) @finding

(call_expression
  function: (generic_function function: [(scoped_identifier) (identifier)] @function)
  (#match? @function "^((std|core)::)?(mem::)?uninitialized$")) @finding
