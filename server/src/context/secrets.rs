//! Which files look like secrets and therefore never enter the index or a bundle.
//!
//! A pattern without a `/` matches the file name only; a pattern with a `/` matches the path
//! relative to the workspace root. The folders above the workspace root never count, so a
//! workspace under `~/aws-credentials-demo/` is not refused whole. Matching is
//! case-insensitive, so `.ENV` and `Deploy.PEM` are caught too.

use anyhow::Context as _;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// File-name globs that always count as secrets.
pub const BUILT_IN_SECRET_FILES: &[&str] = &[
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.keystore",
    "*.jks",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*credentials*",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    "secrets.*",
    "*.secret",
    "*.secrets",
];

/// A compiled set of secret-file patterns.
#[derive(Debug, Clone)]
pub struct SecretFiles {
    /// Patterns without a `/`, matched against the file name.
    names: GlobSet,
    /// Patterns with a `/`, matched against the path relative to the workspace root.
    paths: GlobSet,
}

impl SecretFiles {
    /// The built-in patterns plus `extra` (from `context.secret_files`).
    pub fn new(extra: &[String]) -> anyhow::Result<SecretFiles> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for pattern in BUILT_IN_SECRET_FILES
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
        {
            let glob = GlobBuilder::new(pattern)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .with_context(|| format!("context.secret_files: bad glob `{pattern}`"))?;
            if pattern.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        Ok(SecretFiles {
            names: names.build().context("compiling context.secret_files")?,
            paths: paths.build().context("compiling context.secret_files")?,
        })
    }

    /// Whether `rel` looks like a secret. Give the path relative to the workspace root: the
    /// `/` patterns are matched against all of it. (A file outside the workspace has no such
    /// path; it is given as it is, and then only a pattern that spells out its folders, such as
    /// `**/vault/*`, can match them.)
    pub fn is_secret(&self, rel: &Path) -> bool {
        rel.file_name()
            .is_some_and(|name| self.names.is_match(Path::new(name)))
            || self.paths.is_match(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_files_are_caught_and_source_is_not() {
        let secrets = SecretFiles::new(&["vault/*.rs".to_string()]).expect("valid globs");
        for secret in [
            ".env",
            "config/.env.production",
            "certs/server.PEM",
            "tls/private.key",
            "/home/u/.ssh/id_rsa",
            "id_ed25519.pub",
            "aws/credentials",
            "src/credentials.rs",
            "vault/token.rs",
        ] {
            assert!(secrets.is_secret(Path::new(secret)), "{secret}");
        }
        for source in ["src/main.rs", "src/env.rs", "keys.rs", "src/key_value.rs"] {
            assert!(!secrets.is_secret(Path::new(source)), "{source}");
        }
    }

    #[test]
    fn folder_names_do_not_make_their_files_secret() {
        let secrets = SecretFiles::new(&["vault/*.rs".to_string()]).expect("valid globs");
        // A name pattern (`*credentials*`, `secrets.*`, `.env.*`) says nothing about folders.
        for source in [
            "aws-credentials-demo/src/main.rs",
            "src/credentials/mod.rs",
            "secrets.d/src/lib.rs",
            ".env.d/config.rs",
            "tools/vault-client/src/lib.rs",
        ] {
            assert!(!secrets.is_secret(Path::new(source)), "{source}");
        }
        // A `/` pattern is anchored at the workspace root.
        assert!(!secrets.is_secret(Path::new("app/vault/token.rs")));
        assert!(secrets.is_secret(Path::new("vault/token.rs")));
        // The file's own name still counts wherever it is.
        assert!(secrets.is_secret(Path::new("aws-credentials-demo/.env")));
    }

    #[test]
    fn a_bad_extra_pattern_is_reported_with_its_text() {
        let err = SecretFiles::new(&["a[".to_string()]).expect_err("unclosed class");
        assert!(err.to_string().contains("a["), "{err}");
    }
}
