;; id = "rust/uncontrolled-allocation"
;; title = "Allocation sized by untrusted input"
;; cwe = ["CWE-770", "CWE-789"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["with_capacity", "reserve", "resize", "vec!", "vec !", "alloc", "malloc", "calloc"]]
;; message = "Memory is reserved with a size taken from untrusted input; a large number makes the process allocate gigabytes or abort."
;; explanation = """
;; `Vec::with_capacity(n)` (and `try_with_capacity`), `vec![0; n]`, `reserve(n)`, `resize(n, ..)`,
;; and the raw allocators — `std::alloc::{alloc, alloc_zeroed, realloc}` with a `Layout` built
;; from `n`, `libc::{malloc, calloc, realloc}` — allocate up front. When
;; `n` comes from a request, a header or a length prefix on a socket, one small message can demand
;; more memory than the machine has: the allocation fails and the process aborts, a denial of
;; service for every user.
;;
;; **Fix:** bound the number before using it (`let n = n.min(MAX_ITEMS);`, or reject with
;; `if n > MAX_ITEMS { return Err(..) }`), or grow the buffer as data actually arrives instead of
;; trusting the announced size.
;;
;; **Trade-off:** a limit must be chosen and documented; legitimate larger inputs need streaming.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/789.html"]
;; [taint]
;; text = true
;; numbers = true
;; [examples]
;; vulnerable = [
;; '''
;; struct Page { size: usize }
;; async fn raw(axum::extract::Query(p): axum::extract::Query<Page>) -> usize {
;;     let layout = std::alloc::Layout::from_size_align(p.size, 8).unwrap();
;;     // SAFETY: the example is about the allocation, not this block.
;;     let ptr = unsafe { std::alloc::alloc(layout) }; // finding
;;     ptr as usize
;; }
;; ''',
;; '''
;; async fn c_buffer(axum::extract::Path(n): axum::extract::Path<usize>) -> usize {
;;     // SAFETY: the example is about the allocation, not this block.
;;     let a = unsafe { libc::malloc(n) }; // finding
;;     // SAFETY: the example is about the allocation, not this block.
;;     let b = unsafe { libc::realloc(a, n * 2) }; // finding
;;     b as usize
;; }
;; ''',
;; '''
;; struct Page { size: usize }
;; async fn list(axum::extract::Query(p): axum::extract::Query<Page>) -> usize {
;;     let items: Vec<u64> = Vec::with_capacity(p.size); // finding
;;     items.capacity()
;; }
;; ''',
;; '''
;; fn read_message(mut stream: std::net::TcpStream) -> std::io::Result<Vec<u8>> {
;;     use std::io::Read;
;;     let mut header = [0u8; 4];
;;     stream.read_exact(&mut header)?;
;;     let len = u32::from_be_bytes(header) as usize;
;;     let mut body = vec![0u8; len]; // finding
;;     stream.read_exact(&mut body)?;
;;     Ok(body)
;; }
;; ''',
;; '''
;; fn handle(mut socket: std::net::TcpStream) {
;;     use std::io::Read;
;;     let mut text = String::new();
;;     socket.read_to_string(&mut text).ok();
;;     let count: usize = text.trim().parse().unwrap_or(0);
;;     let mut cache: Vec<String> = Vec::new();
;;     cache.reserve(count); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; async fn c_buffer(axum::extract::Path(n): axum::extract::Path<usize>) -> usize {
;;     // SAFETY: the example is about the allocation, not this block.
;;     let a = unsafe { libc::malloc(n.min(4096)) };
;;     // SAFETY: the example is about the allocation, not this block.
;;     let b = unsafe { libc::calloc(16, 64) };
;;     a as usize + b as usize
;; }
;; ''',
;; '''
;; fn node() -> *mut u8 {
;;     let layout = std::alloc::Layout::new::<[u64; 4]>();
;;     // SAFETY: the example is about the allocation, not this block.
;;     unsafe { std::alloc::alloc_zeroed(layout) }
;; }
;; ''',
;; '''
;; const MAX_ITEMS: usize = 1000;
;; struct Page { size: usize }
;; async fn list(axum::extract::Query(p): axum::extract::Query<Page>) -> usize {
;;     let items: Vec<u64> = Vec::with_capacity(p.size.min(MAX_ITEMS));
;;     items.capacity()
;; }
;; ''',
;; '''
;; fn read_message(mut stream: std::net::TcpStream) -> std::io::Result<Vec<u8>> {
;;     use std::io::Read;
;;     let mut header = [0u8; 4];
;;     stream.read_exact(&mut header)?;
;;     let len = u32::from_be_bytes(header) as usize;
;;     if len > 1 << 20 {
;;         return Err(std::io::ErrorKind::InvalidData.into());
;;     }
;;     let mut body = vec![0u8; len];
;;     stream.read_exact(&mut body)?;
;;     Ok(body)
;; }
;; ''',
;; '''
;; fn read_body(mut stream: std::net::TcpStream, length: usize) -> Vec<u8> {
;;     use std::io::Read;
;;     let mut chunk = vec![0u8; (length - 0).min(64 * 1024)];
;;     let n = stream.read(&mut chunk).unwrap_or(0);
;;     chunk.truncate(n);
;;     chunk
;; }
;; ''',
;; '''
;; fn buffer(items: &[u8]) -> Vec<u8> {
;;     let mut out = Vec::with_capacity(items.len() * 2);
;;     out.extend_from_slice(items);
;;     out
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier) @function
  arguments: (arguments . (_) @sink)
  (#match? @function "(^|::)(Vec|String|VecDeque|HashMap|HashSet|BytesMut|BinaryHeap)(::<[^>]*>)?::with_capacity$")) @finding

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments . (_) @sink)
  (#any-of? @method "reserve" "reserve_exact" "resize" "try_reserve")) @finding

(macro_invocation
  macro: (identifier) @macro
  (token_tree) @sink
  (#eq? @macro "vec")
  (#match? @sink ";")) @finding

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments (_) @sink .)
  (#match? @function "^(((std|core)::)?alloc::(alloc|alloc_zeroed|realloc)|libc::(malloc|calloc|realloc)|(Vec|String|VecDeque|HashMap|HashSet|BytesMut)(::<[^>]*>)?::try_with_capacity)$")) @finding
