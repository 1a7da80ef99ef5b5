;; id = "rust/set-len-uninit"
;; title = "Vec::set_len over uninitialised elements"
;; cwe = ["CWE-908"]
;; severity = "high"
;; precision = "medium"
;; anchors = [["set_len"]]
;; message = "`set_len` grows a vector created with `with_capacity` before its elements are written, so the vector exposes uninitialised memory."
;; explanation = """
;; `Vec::with_capacity(n)` allocates but does not initialise; `set_len(n)` then claims `n`
;; initialised elements. Reading them is undefined behaviour, and handing the buffer to `Read::read`
;; lets an implementation read the garbage (a classic source of memory disclosure).
;;
;; **Fix:** `vec![0u8; n]` (zeroing is cheap), `resize(n, 0)`, or write through
;; `spare_capacity_mut()`/`as_mut_ptr()` first and call `set_len` after; for reads, use
;; `read_to_end` or `Read::take`.
;;
;; **Trade-off:** zeroing costs a memset per buffer; a buffer reused across reads avoids even that.
;; """
;; references = ["https://doc.rust-lang.org/std/vec/struct.Vec.html#method.set_len"]
;; [examples]
;; vulnerable = [
;; '''
;; fn read_all(r: &mut impl std::io::Read, n: usize) -> std::io::Result<Vec<u8>> {
;;     let mut buf = Vec::with_capacity(n);
;;     // SAFETY: wrong, nothing was written.
;;     unsafe { buf.set_len(n) }; // finding
;;     r.read_exact(&mut buf)?;
;;     Ok(buf)
;; }
;; ''',
;; '''
;; fn scratch(n: usize) -> Vec<u32> {
;;     let mut v: Vec<u32> = Vec::with_capacity(n);
;;     // SAFETY: wrong.
;;     unsafe {
;;         v.set_len(n); // finding
;;     }
;;     v
;; }
;; ''',
;; '''
;; fn table() -> Vec<u64> {
;;     let mut cells = Vec::<u64>::with_capacity(256);
;;     // SAFETY: wrong.
;;     unsafe { cells.set_len(256) } // finding
;;     cells
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn read_all(r: &mut impl std::io::Read, n: usize) -> std::io::Result<Vec<u8>> {
;;     let mut buf = vec![0u8; n];
;;     r.read_exact(&mut buf)?;
;;     Ok(buf)
;; }
;; ''',
;; '''
;; fn fill(n: usize) -> Vec<u8> {
;;     let mut v = Vec::with_capacity(n);
;;     // SAFETY: every element is written before the length grows.
;;     unsafe {
;;         std::ptr::write_bytes(v.as_mut_ptr(), 0, n);
;;         v.set_len(n);
;;     }
;;     v
;; }
;; ''',
;; '''
;; fn clear(v: &mut Vec<u8>) {
;;     // SAFETY: shrinking to zero is always sound.
;;     unsafe { v.set_len(0) }
;; }
;; ''',
;; ]

(call_expression
  function: (field_expression value: (identifier) @vector field: (field_identifier) @method)
  arguments: (arguments . (_) @length .)
  (#eq? @method "set_len")
  (#not-eq? @length "0")
  (#uninit-vec? @vector)) @finding
