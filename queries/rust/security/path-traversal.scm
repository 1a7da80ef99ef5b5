;; id = "rust/path-traversal"
;; title = "File path from untrusted input"
;; cwe = ["CWE-22"]
;; severity = "high"
;; precision = "high"
;; anchors = [["file::", "fs::", "servedir::"]]
;; message = "A file path is built from untrusted input, so `../` or an absolute path can reach files outside the intended folder."
;; explanation = """
;; Joining a request value onto a base folder (`base.join(name)`) does not confine it: `../../etc/passwd`
;; walks out of the folder, and an absolute path replaces the base entirely. Reading, writing or
;; deleting that path lets an attacker reach any file the process can.
;;
;; **Fix:** either keep only the final component (`Path::new(&name).file_name()`), or canonicalize
;; the joined path and check that it is still inside the canonical base before use:
;; `let full = base.join(&name).canonicalize()?; if !full.starts_with(&base) { return Err(..) }`.
;;
;; **Trade-off:** `canonicalize` touches the file system and fails for files that do not exist yet;
;; for files to be created, canonicalize the parent folder instead. Symlinks inside the base that
;; point outside are resolved, which is usually what you want.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/22.html"]
;; [taint]
;; text = true
;; [examples]
;; vulnerable = [
;; '''
;; use axum::extract::Path;
;; async fn download(Path(name): Path<String>) -> Vec<u8> {
;;     let full = std::path::Path::new("/srv/files").join(&name);
;;     std::fs::read(&full).unwrap_or_default() // finding
;; }
;; ''',
;; '''
;; async fn remove(axum::extract::Query(target): axum::extract::Query<String>) {
;;     std::fs::remove_file(format!("/var/app/uploads/{target}")).ok(); // finding
;; }
;; ''',
;; '''
;; struct Upload { name: String, body: Vec<u8> }
;; #[rocket::post("/upload", data = "<upload>")]
;; fn upload(upload: rocket::serde::json::Json<Upload>) -> std::io::Result<()> {
;;     let dest = format!("uploads/{}", upload.name);
;;     std::fs::write(dest, &upload.body) // finding
;; }
;; ''',
;; '''
;; use axum::extract::Query;
;; struct Store { root: std::path::PathBuf }
;; impl Store {
;;     fn path_of(&self, name: &str) -> std::path::PathBuf {
;;         self.root.join(name)
;;     }
;;     async fn fetch(&self, Query(name): Query<String>) -> Vec<u8> {
;;         std::fs::read(self.path_of(&name)).unwrap_or_default() // finding
;;     }
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use axum::extract::Query;
;; fn confined(name: &str) -> Option<std::path::PathBuf> {
;;     let base = std::path::Path::new("/srv/files").canonicalize().ok()?;
;;     let full = base.join(name).canonicalize().ok()?;
;;     if !full.starts_with(&base) {
;;         return None;
;;     }
;;     Some(full)
;; }
;; async fn download(Query(name): Query<String>) -> Vec<u8> {
;;     let Some(full) = confined(&name) else { return Vec::new() };
;;     std::fs::read(full).unwrap_or_default()
;; }
;; ''',
;; '''
;; use axum::extract::Path;
;; async fn download(Path(name): Path<String>) -> Vec<u8> {
;;     let base = std::path::Path::new("/srv/files").canonicalize().unwrap();
;;     let Ok(full) = base.join(&name).canonicalize() else { return Vec::new() };
;;     if !full.starts_with(&base) {
;;         return Vec::new();
;;     }
;;     std::fs::read(&full).unwrap_or_default()
;; }
;; ''',
;; '''
;; use axum::extract::Path;
;; async fn download(Path(name): Path<String>) -> Vec<u8> {
;;     let Some(file) = std::path::Path::new(&name).file_name() else { return Vec::new() };
;;     std::fs::read(std::path::Path::new("/srv/files").join(file)).unwrap_or_default()
;; }
;; ''',
;; '''
;; fn load(config_dir: &std::path::Path) -> String {
;;     std::fs::read_to_string(config_dir.join("settings.toml")).unwrap_or_default()
;; }
;; ''',
;; ]

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments . (_) @sink)
  (#match? @function "(^|::)(File::(open|create)|fs::(read|read_to_string|write|remove_file|remove_dir|remove_dir_all|create_dir_all|copy|rename|read_dir|metadata)|NamedFile::open|ServeFile::new|ServeDir::new)$")) @finding
