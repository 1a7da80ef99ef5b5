;; id = "rust/from-raw-parts-unchecked"
;; title = "Slice from a raw pointer with an untrusted length"
;; cwe = ["CWE-119", "CWE-125"]
;; severity = "high"
;; precision = "high"
;; anchors = [["from_raw_parts"]]
;; message = "A slice is built from a raw pointer with a length that comes from untrusted input and is not checked against the buffer, so it can read or write past its end."
;; explanation = """
;; `slice::from_raw_parts(ptr, len)` trusts `len` completely. When the length is read from a
;; network header, a file or a request and not compared with the real size of the allocation, the
;; slice reaches past the buffer: an out-of-bounds read (information disclosure) or, with
;; `from_raw_parts_mut`, write (memory corruption).
;;
;; **Fix:** check the length against the buffer first (`if len > buf.len() { return Err(..) }`) or,
;; better, slice the buffer safely (`&buf[..len]`, `buf.get(..len)`), which checks bounds for you.
;;
;; **Trade-off:** one comparison; the safe slicing form may panic, so prefer `get` on untrusted
;; lengths.
;; """
;; references = ["https://doc.rust-lang.org/std/slice/fn.from_raw_parts.html"]
;; [taint]
;; text = true
;; numbers = true
;; [examples]
;; vulnerable = [
;; '''
;; fn payload(mut stream: std::net::TcpStream, buf: &[u8]) -> &[u8] {
;;     use std::io::Read;
;;     let mut header = [0u8; 4];
;;     stream.read_exact(&mut header).unwrap();
;;     let len = u32::from_le_bytes(header) as usize;
;;     // SAFETY: wrong, len is not checked.
;;     unsafe { std::slice::from_raw_parts(buf.as_ptr(), len) } // finding
;; }
;; ''',
;; '''
;; struct Req { offset: usize, count: usize }
;; async fn peek(axum::Json(r): axum::Json<Req>) -> String {
;;     let data = [0u8; 64];
;;     // SAFETY: wrong.
;;     let view = unsafe { core::slice::from_raw_parts(data.as_ptr().add(r.offset), r.count) }; // finding
;;     format!("{view:?}")
;; }
;; ''',
;; '''
;; #[rocket::get("/peek?<n>")]
;; fn peek(n: usize) -> String {
;;     let mut buf = [0u8; 16];
;;     // SAFETY: wrong.
;;     let s = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr(), n) }; // finding
;;     format!("{s:?}")
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn payload(mut stream: std::net::TcpStream, buf: &[u8]) -> &[u8] {
;;     use std::io::Read;
;;     let mut header = [0u8; 4];
;;     stream.read_exact(&mut header).unwrap();
;;     let len = u32::from_le_bytes(header) as usize;
;;     if len > buf.len() {
;;         return &[];
;;     }
;;     // SAFETY: len is within buf.
;;     unsafe { std::slice::from_raw_parts(buf.as_ptr(), len) }
;; }
;; ''',
;; '''
;; fn view(v: &Vec<u8>) -> &[u8] {
;;     // SAFETY: the pointer and length come from the same vector.
;;     unsafe { std::slice::from_raw_parts(v.as_ptr(), v.len()) }
;; }
;; ''',
;; '''
;; fn payload(buf: &[u8], len: usize) -> Option<&[u8]> {
;;     buf.get(..len)
;; }
;; ''',
;; ]

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments (_) . (_) @sink .)
  (#match? @function "(^|::)(from_raw_parts|from_raw_parts_mut)$")) @finding
