;; id = "rust/dangling-pointer"
;; title = "Raw pointer to a local escapes its scope"
;; cwe = ["CWE-825", "CWE-562"]
;; severity = "high"
;; precision = "high"
;; anchors = [["as_ptr", "as_mut_ptr", "*const", "*mut", "* const", "* mut"]]
;; message = "A raw pointer to a local value (or to a temporary) outlives the value; using it reads freed stack or heap memory."
;; explanation = """
;; Raw pointers carry no lifetime, so the compiler lets them outlive what they point to. Returning
;; `&local as *const T` or `local.as_ptr()` from a function, or calling `as_ptr()` on a temporary
;; such as `CString::new(..).unwrap()` whose value is dropped at the end of the statement, leaves a
;; pointer to freed memory (use after free, CWE-416).
;;
;; **Fix:** return the owned value (or a `Box`, `Vec`, `CString`) and let the caller take the
;; pointer while it holds the value; for FFI, keep the `CString` in a variable that lives as long as
;; the pointer is used, or hand ownership over with `into_raw` and take it back with `from_raw`.
;;
;; **Trade-off:** the caller must keep the owner alive, which is the actual contract.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/825.html", "https://doc.rust-lang.org/std/ffi/struct.CString.html#method.as_ptr"]
;; [examples]
;; vulnerable = [
;; '''
;; fn counter() -> *const u32 {
;;     let count = 42u32;
;;     &count as *const u32 // finding
;; }
;; ''',
;; '''
;; fn name() -> *const u8 {
;;     let buf = vec![b'a', b'b', 0];
;;     return buf.as_ptr(); // finding
;; }
;; ''',
;; '''
;; fn call(s: &str) {
;;     let p = std::ffi::CString::new(s).unwrap().as_ptr(); // finding
;;     // SAFETY: wrong, the CString is already dropped.
;;     unsafe { puts(p) };
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn name() -> std::ffi::CString {
;;     std::ffi::CString::new("ab").unwrap()
;; }
;; ''',
;; '''
;; fn call(s: &str) {
;;     let owned = std::ffi::CString::new(s).unwrap();
;;     // SAFETY: owned lives until the end of the function.
;;     unsafe { puts(owned.as_ptr()) };
;; }
;; ''',
;; '''
;; fn start(data: &[u8]) -> *const u8 {
;;     let view = &data[1..];
;;     view.as_ptr()
;; }
;; ''',
;; ]

(return_expression
  (type_cast_expression
    value: (reference_expression value: (identifier) @local)
    type: (pointer_type)) @finding
  (#local-binding? @local))

(function_item
  body: (block
    (type_cast_expression
    value: (reference_expression value: (identifier) @local)
    type: (pointer_type)) @finding)
  (#local-binding? @local))

(return_expression
  (call_expression
    function: (field_expression value: (identifier) @local field: (field_identifier) @method)) @finding
  (#any-of? @method "as_ptr" "as_mut_ptr")
  (#owned-local? @local))

(function_item
  body: (block
    (call_expression
      function: (field_expression value: (identifier) @local field: (field_identifier) @method)) @finding)
  (#any-of? @method "as_ptr" "as_mut_ptr")
  (#owned-local? @local))

(let_declaration
  value: (call_expression
    function: (field_expression value: (_) @temporary field: (field_identifier) @method)) @finding
  (#eq? @method "as_ptr")
  (#match? @temporary "^((std::)?ffi::)?CString::new\\("))
