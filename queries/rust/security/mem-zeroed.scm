;; id = "rust/mem-zeroed"
;; title = "mem::zeroed of a type that cannot be zero"
;; cwe = ["CWE-908", "CWE-476"]
;; severity = "high"
;; precision = "high"
;; anchors = [["zeroed"]]
;; message = "An all-zero value of this type (a reference, `Box`, `Vec`, `String`, `NonNull`, function pointer, `bool`/`char`) is invalid; creating it is undefined behaviour."
;; explanation = """
;; References, `Box`, `NonNull`, function pointers and the collections that contain them are never
;; null, and the compiler relies on that (for example to store `Option<&T>` in one word). A zeroed
;; one is a null pointer the program believes is valid: dereferencing it crashes at best, and its
;; mere existence lets the optimiser make wrong assumptions.
;;
;; **Fix:** use `Option<&T>`/`Option<Box<T>>` with `None`, `Vec::new()`, `String::new()`, or
;; `Default::default()`. Keep `mem::zeroed` for plain C structs of integers and raw pointers.
;;
;; **Trade-off:** none for these types; `None` is also zero-sized overhead thanks to the niche.
;; """
;; references = ["https://doc.rust-lang.org/std/mem/fn.zeroed.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn bad() -> &'static str {
;;     // SAFETY: wrong.
;;     let s: &'static str = unsafe { std::mem::zeroed() }; // finding
;;     s
;; }
;; ''',
;; '''
;; fn bad() -> Vec<u8> {
;;     // SAFETY: wrong.
;;     unsafe { core::mem::zeroed::<Vec<u8>>() } // finding
;; }
;; ''',
;; '''
;; fn callback() -> fn() {
;;     // SAFETY: wrong.
;;     let f: fn() = unsafe { std::mem::zeroed() }; // finding
;;     f
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; #[repr(C)]
;; struct Stat { size: u64, mode: u32 }
;; fn empty() -> Stat {
;;     // SAFETY: Stat is plain integers, for which zero is valid.
;;     unsafe { std::mem::zeroed() }
;; }
;; ''',
;; '''
;; fn zero() -> [u8; 64] {
;;     // SAFETY: integers may be zero.
;;     let buf: [u8; 64] = unsafe { std::mem::zeroed() };
;;     buf
;; }
;; ''',
;; '''
;; fn none() -> Option<&'static str> {
;;     None
;; }
;; ''',
;; ]

(let_declaration
  type: (_) @type
  value: (_) @value
  (#match? @value "^(unsafe\\s*\\{\\s*)?((std|core)::)?(mem::)?zeroed\\(\\)")
  (#not-zeroable? @type)) @finding

(call_expression
  function: (generic_function
    function: [(scoped_identifier) (identifier)] @function
    type_arguments: (type_arguments . (_) @type .))
  (#match? @function "(^|::)zeroed$")
  (#not-zeroable? @type)) @finding
