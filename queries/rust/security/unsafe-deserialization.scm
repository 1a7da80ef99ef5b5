;; id = "rust/unsafe-deserialization"
;; title = "Untrusted bytes decoded without limits"
;; cwe = ["CWE-502", "CWE-770"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["bincode::", "serde_pickle::", "rmp_serde::", "ciborium::", "postcard::"]]
;; message = "Untrusted bytes are decoded with a binary format that trusts length prefixes, so a few bytes can demand gigabytes of memory or build unexpected objects."
;; explanation = """
;; Binary serde formats such as bincode, MessagePack, CBOR, postcard and pickle read length prefixes
;; from the input and allocate accordingly; bincode 1's default `deserialize` has no size limit, so
;; an eight-byte length of `u64::MAX` aborts the process. Pickle can also describe arbitrary object
;; graphs.
;;
;; **Fix:** set a limit (`bincode::options().with_limit(64 * 1024).deserialize(&bytes)`), check the
;; input size before decoding, and prefer a self-describing, bounded format (JSON with a body size
;; limit) for data from the network.
;;
;; **Trade-off:** messages above the limit are rejected, so pick it from the largest legitimate
;; message.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/502.html", "https://docs.rs/bincode/1/bincode/config/trait.Options.html#method.with_limit"]
;; [taint]
;; text = true
;; [examples]
;; vulnerable = [
;; '''
;; async fn ingest(body: axum::body::Bytes) -> String {
;;     let event: Result<Event, _> = bincode::deserialize(&body); // finding
;;     format!("{}", event.is_ok())
;; }
;; ''',
;; '''
;; fn serve(listener: std::net::TcpListener) {
;;     for stream in listener.incoming() {
;;         let Ok(stream) = stream else { continue };
;;         let msg: Result<Message, _> = bincode::deserialize_from(stream); // finding
;;         drop(msg);
;;     }
;; }
;; ''',
;; '''
;; fn read_frame(mut socket: std::net::TcpStream) -> Option<Frame> {
;;     use std::io::Read;
;;     let mut buf = vec![0u8; 4096];
;;     let n = socket.read(&mut buf).ok()?;
;;     rmp_serde::from_slice(&buf[..n]).ok() // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use bincode::Options;
;; async fn ingest(body: axum::body::Bytes) -> String {
;;     let event: Result<Event, _> = bincode::options().with_limit(64 * 1024).deserialize(&body);
;;     format!("{}", event.is_ok())
;; }
;; ''',
;; '''
;; fn load_cache(path: &std::path::Path) -> Option<Cache> {
;;     let bytes = std::fs::read(path).ok()?;
;;     bincode::deserialize(&bytes).ok()
;; }
;; ''',
;; '''
;; async fn ingest(body: axum::Json<Event>) -> String {
;;     format!("{}", body.id)
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier) @function
  arguments: (arguments . (_) @sink)
  (#match? @function "^(bincode::deserialize|bincode::deserialize_from|bincode::serde::decode_from_slice|bincode::decode_from_slice|serde_pickle::from_slice|serde_pickle::from_reader|rmp_serde::from_slice|rmp_serde::from_read|ciborium::from_reader|ciborium::de::from_reader|postcard::from_bytes)$")) @finding
