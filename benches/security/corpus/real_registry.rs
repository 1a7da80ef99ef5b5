// Adapted from real crates in the local cargo registry cache (names changed little, bodies
// trimmed to the lines that matter). Each block names its origin.

// sqlx-postgres 0.8.6, src/migrate.rs: identifiers are quoted by doubling `"`; the database
// name in the `pg_terminate_backend` query is pasted between single quotes unescaped.
async fn create_database(conn: &mut PgConnection, database: &str) -> Result<(), Error> {
    let _ = conn.execute(&*format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""))).await?; // SAFE: CWE-89
    let exists: bool = query_scalar("select exists(SELECT 1 from pg_database WHERE datname = $1)").bind(database).fetch_one(&mut *conn).await?; // SAFE: CWE-89
    let row: (String,) = query_as("SELECT current_setting('server_version_num')").fetch_one(&mut *conn).await?; // SAFE: CWE-89
    let version = row.0.parse::<i32>().unwrap_or(0);
    let pid_type = if version >= 90200 { "pid" } else { "procpid" };
    conn.execute(&*format!("SELECT pg_terminate_backend(pg_stat_activity.{pid_type}) FROM pg_stat_activity WHERE pg_stat_activity.datname = '{database}' AND {pid_type} <> pg_backend_pid()")).await?; // VULN: CWE-89
    let _ = exists;
    Ok(())
}

// sqlx-sqlite / sqlx-postgres migrate.rs: the migrations table name is a constant of the crate.
async fn ensure_migrations_table(conn: &mut PgConnection) -> Result<(), Error> {
    let table_name = "_sqlx_migrations";
    conn.execute(&*format!("CREATE TABLE IF NOT EXISTS {table_name} (version BIGINT PRIMARY KEY, description TEXT NOT NULL)")).await?; // SAFE: CWE-89
    let row: Option<(i64,)> = query_as(&format!("SELECT version FROM {table_name} WHERE success = false ORDER BY version LIMIT 1")).fetch_optional(&mut *conn).await?; // SAFE: CWE-89
    let _ = row;
    Ok(())
}

// native-tls 0.2.18, src/imp/openssl.rs: verification off only when the caller asked for it.
fn connect(connector: &SslConnector, accept_invalid_certs: bool, use_sni: bool, accept_invalid_hostnames: bool) -> Result<ConnectConfiguration, Error> {
    let mut ssl = connector.configure()?.use_server_name_indication(use_sni).verify_hostname(!accept_invalid_hostnames);
    if accept_invalid_certs {
        ssl.set_verify(SslVerifyMode::NONE); // VULN: CWE-295
    }
    Ok(ssl)
}

// reqwest 0.12.28, src/async_impl/client.rs: configuration flags passed through.
fn configure_tls(tls: &mut TlsConnectorBuilder, config: &Config) {
    tls.danger_accept_invalid_hostnames(!config.hostname_verification); // VULN: CWE-295
    tls.danger_accept_invalid_certs(!config.certs_verification); // VULN: CWE-295
    tls.use_sni(config.tls_sni); // SAFE: CWE-295
}

// parking_lot 0.12.5, src/once.rs: a panic guard (not a lock guard) is forgotten on success.
fn call_once_slow(state: &Once, f: impl FnOnce(OnceState)) {
    let guard = PanicGuard(state);
    f(OnceState::New);
    mem::forget(guard); // SAFE: CWE-667
}

// bytes 1.12.2, src/bytes_mut.rs: shrinking never exposes uninitialised bytes.
impl BytesMut {
    pub fn truncate(&mut self, len: usize) {
        if len <= self.len() {
            // SAFETY: Shrinking the buffer cannot expose uninitialized bytes.
            unsafe { self.set_len(len) }; // SAFE: CWE-908
        }
    }

    pub fn clear(&mut self) {
        // SAFETY: Setting the length to zero cannot expose uninitialized bytes.
        unsafe { self.set_len(0) }; // SAFE: CWE-908
    }

    fn as_slice(&self) -> &[u8] {
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) } // SAFE: CWE-125
    }
}

// hashbrown 0.15.5, src/util.rs: a pointer from an address, written with transmute.
fn invalid_mut<T>(addr: usize) -> *mut T {
    unsafe { core::mem::transmute(addr) } // VULN: CWE-843
}

// cc 1.11.3, src/build_env.rs and src/lib.rs: compilers named by the build environment.
fn find_compiler(prog: &str) -> std::io::Result<std::process::Output> {
    let mut cmd = Command::new("cc"); // SAFE: CWE-78
    cmd.arg("--version");
    let _ = cmd.output();
    let tool = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let _ = Command::new(&tool).arg("-v").output(); // SAFE: CWE-78
    Command::new(prog).arg("-dumpversion").output() // SAFE: CWE-78
}

// tower-cookies 0.10.0, src/lib.rs (documentation examples): cookies added without attributes.
async fn handler(cookies: Cookies) -> &'static str {
    cookies.add(Cookie::new("hello_world", "hello_world")); // VULN: CWE-614
    let mut secure = Cookie::new("session", "abc");
    secure.set_secure(true);
    secure.set_http_only(true);
    cookies.add(secure); // SAFE: CWE-614
    "Check your cookies."
}

// tempfile 3.27.0: random names inside the temporary folder, created exclusively.
fn tempfile_in_tmp() -> std::io::Result<NamedTempFile> {
    let dir = std::env::temp_dir();
    tempfile::Builder::new().prefix(".tmp").rand_bytes(6).tempfile_in(&dir) // SAFE: CWE-377
}

// sqlx-mysql 0.8.6, src/connection/auth.rs: the protocol's mysql_native_password scramble.
fn scramble_sha1(password: &str, nonce: &[u8]) -> Vec<u8> {
    let mut ctx = Sha1::new(); // VULN: CWE-328
    ctx.update(password);
    let pw_hash = ctx.finalize_reset();
    ctx.update(pw_hash);
    let pw_hash_hash = ctx.finalize_reset();
    ctx.update(nonce);
    ctx.update(pw_hash_hash);
    ctx.finalize().to_vec()
}

// sqlx-postgres 0.8.6, src/connection/establish.rs: the MD5 password exchange the server demands.
fn md5_password(user: &str, password: &str, salt: [u8; 4]) -> String {
    let mut hasher = Md5::new(); // VULN: CWE-328
    hasher.update(password); // VULN: CWE-916
    hasher.update(user);
    let mut output = String::with_capacity(35); // SAFE: CWE-789
    let _ = salt;
    output
}

// globset 0.4.19: patterns come from the program's own configuration files.
fn glob_regex(re: &str) -> Result<Regex, Error> {
    regex::bytes::RegexBuilder::new(re).dot_matches_new_line(true).size_limit(10 * (1 << 20)).build() // SAFE: CWE-1333
}

// ignore 0.4.30: reading an ignore file found by walking the tree.
fn read_ignore(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path) // SAFE: CWE-22
}

// tokio 1.54.1, src/io/read_buf.rs: the unfilled part of a caller's buffer.
fn unfilled_mut(buf: &mut ReadBuf<'_>) -> &mut UninitSlice {
    let len = buf.capacity() - buf.filled().len();
    unsafe { bytes::buf::UninitSlice::from_raw_parts_mut(buf.ptr(), len) } // SAFE: CWE-125
}

// httparse 1.10.1 / hyper: header counts come from a fixed-size array.
fn headers_buf() -> Vec<Header> {
    let mut headers = Vec::with_capacity(100); // SAFE: CWE-789
    headers.resize(100, EMPTY_HEADER); // SAFE: CWE-789
    headers
}

// ring 0.17.14 tests / examples: a fixed key for a known-answer test is test code.
#[cfg(test)]
mod tests {
    #[test]
    fn known_answer() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key-for-known-answer-test"); // SAFE: CWE-321
        let _ = key;
    }
}

// rand 0.8.8, src/rngs/small.rs documentation: a seeded generator for simulations.
fn simulate(steps: usize) -> u64 {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut total = 0;
    for _ in 0..steps {
        total += rng.gen_range(0..6); // SAFE: CWE-338
    }
    total
}

// axum 0.7.9 examples (templates, static-file-server): HTML built from a path segment.
async fn greet(Path(name): Path<String>) -> Html<String> {
    Html(format!("<h1>Hello, {name}!</h1>")) // VULN: CWE-79
}

// axum 0.7.9 examples (readme): a JSON echo is not HTML.
async fn create_user(Json(payload): Json<CreateUser>) -> (StatusCode, Json<User>) {
    let user = User { id: 1337, username: payload.username }; // SAFE: CWE-79
    (StatusCode::CREATED, Json(user))
}

// tower-http 0.6.11 ServeDir: the directory is fixed; the request path is normalised inside.
fn static_files() -> ServeDir {
    ServeDir::new("assets") // SAFE: CWE-22
}

// openssl 0.10.82 documentation: legacy ciphers kept for interoperability.
fn legacy(key: &[u8], data: &[u8]) -> Vec<u8> {
    let cipher = Cipher::des_ede3_cbc(); // VULN: CWE-327
    let modern = Cipher::aes_256_gcm(); // SAFE: CWE-327
    let _ = modern;
    encrypt(cipher, key, None, data).unwrap_or_default()
}
