;; id = "rust/insecure-temp-file"
;; title = "Predictable file in a shared temporary folder"
;; cwe = ["CWE-377"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["/tmp/", "temp_dir"]]
;; message = "A file with a fixed name is created in a shared temporary folder; another local user can create it first (or a symlink in its place) and read or redirect what is written."
;; explanation = """
;; `/tmp` is shared by every user of the machine. Creating `/tmp/app.log` (or
;; `temp_dir().join("app.lock")`) with a fixed name lets another user pre-create that path as a
;; symlink to a file of yours, which you then overwrite, or as their own file, which they then read.
;;
;; **Fix:** use the `tempfile` crate (`tempfile::NamedTempFile::new()`, `tempfile::tempdir()`),
;; which creates files with random names and `O_EXCL`, readable only by you; or keep state in a
;; per-user folder (`$XDG_RUNTIME_DIR`, the application's data folder).
;;
;; **Trade-off:** the name is not known in advance; pass the path to whoever needs it.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/377.html", "https://docs.rs/tempfile"]
;; [examples]
;; vulnerable = [
;; '''
;; fn write_state(data: &[u8]) -> std::io::Result<()> {
;;     std::fs::write("/tmp/myapp-state.json", data) // finding
;; }
;; ''',
;; '''
;; fn lock() -> std::io::Result<std::fs::File> {
;;     std::fs::File::create(std::env::temp_dir().join("myapp.lock")) // finding
;; }
;; ''',
;; '''
;; fn log_file() -> std::io::Result<std::fs::File> {
;;     std::fs::OpenOptions::new().append(true).create(true).open("/tmp/myapp.log") // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn write_state(data: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
;;     use std::io::Write;
;;     let mut file = tempfile::NamedTempFile::new()?;
;;     file.write_all(data)?;
;;     Ok(file)
;; }
;; ''',
;; '''
;; fn write_state(dir: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
;;     std::fs::write(dir.join("state.json"), data)
;; }
;; ''',
;; '''
;; fn read_state() -> std::io::Result<String> {
;;     std::fs::read_to_string("/tmp/myapp-state.json")
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier) @function
  arguments: (arguments . (_) @path)
  (#match? @function "(^|::)(File::create|fs::write|fs::create_dir|fs::create_dir_all|File::create_new)$")
  (#match? @path "^&?(\"/(var/)?tmp/|(std::)?(env::)?temp_dir\\(\\)\\.join\\()")) @finding

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments . (_) @path)
  (#eq? @method "open")
  (#match? @path "^&?(\"/(var/)?tmp/|(std::)?(env::)?temp_dir\\(\\)\\.join\\()")) @finding
