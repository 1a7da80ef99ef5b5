//! Which files look like secrets and therefore never enter the index or a bundle.
//!
//! Matching is on the file name (and on the path relative to the workspace root, for patterns
//! with a `/`), case-insensitively, so `.ENV` and `Deploy.PEM` are caught too.

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
    set: GlobSet,
}

impl SecretFiles {
    /// The built-in patterns plus `extra` (from `context.secret_files`).
    pub fn new(extra: &[String]) -> anyhow::Result<SecretFiles> {
        let mut builder = GlobSetBuilder::new();
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
            builder.add(glob);
        }
        Ok(SecretFiles {
            set: builder.build().context("compiling context.secret_files")?,
        })
    }

    /// Whether `path` (absolute or relative) looks like a secret.
    pub fn is_secret(&self, path: &Path) -> bool {
        if path
            .file_name()
            .is_some_and(|name| self.set.is_match(Path::new(name)))
        {
            return true;
        }
        self.set.is_match(path)
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
    fn a_bad_extra_pattern_is_reported_with_its_text() {
        let err = SecretFiles::new(&["a[".to_string()]).expect_err("unclosed class");
        assert!(err.to_string().contains("a["), "{err}");
    }
}
