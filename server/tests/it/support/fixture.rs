//! The fixture DSL: `//- /path.rs` starts a file, `$0` marks a cursor (one marker) or a
//! selection (two markers). Markers are removed from the text and recorded as byte offsets.

/// One file of a fixture.
#[derive(Debug, Clone)]
pub struct FixtureFile {
    /// The path relative to the workspace root, without the leading slash.
    pub path: String,
    /// The text, markers removed.
    pub text: String,
    /// Byte offsets of the `$0` markers, in order.
    pub markers: Vec<usize>,
}

/// A parsed fixture.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The files, in order of appearance.
    pub files: Vec<FixtureFile>,
}

impl Fixture {
    /// Parses a fixture. Text before the first header belongs to `/main.rs`.
    pub fn parse(text: &str) -> Fixture {
        let mut files: Vec<FixtureFile> = Vec::new();
        let mut current: Option<(String, String)> = None;
        let trimmed = text.strip_prefix('\n').unwrap_or(text);
        for line in trimmed.split_inclusive('\n') {
            if let Some(header) = line.strip_prefix("//- ") {
                if let Some((path, body)) = current.take() {
                    files.push(Self::file(path, &body));
                }
                let path = header.trim().trim_start_matches('/').to_string();
                current = Some((path, String::new()));
                continue;
            }
            match current.as_mut() {
                Some((_, body)) => body.push_str(line),
                None => current = Some(("main.rs".into(), line.to_string())),
            }
        }
        if let Some((path, body)) = current.take() {
            files.push(Self::file(path, &body));
        }
        Fixture { files }
    }

    fn file(path: String, body: &str) -> FixtureFile {
        let mut text = String::with_capacity(body.len());
        let mut markers = Vec::new();
        let mut rest = body;
        while let Some(i) = rest.find("$0") {
            text.push_str(&rest[..i]);
            markers.push(text.len());
            rest = &rest[i + 2..];
        }
        text.push_str(rest);
        FixtureFile {
            path,
            text,
            markers,
        }
    }

    /// The file at `path` (with or without the leading slash).
    pub fn file_at(&self, path: &str) -> &FixtureFile {
        let path = path.trim_start_matches('/');
        self.files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("fixture has no file {path}"))
    }
}

#[test]
fn fixture_parses_files_and_markers() {
    let fixture = Fixture::parse(
        r#"
//- /src/lib.rs
fn $0a() {}
//- /src/b.rs
fn b() { $0let x = 1;$0 }
"#,
    );
    assert_eq!(fixture.files.len(), 2);
    assert_eq!(fixture.files[0].path, "src/lib.rs");
    assert_eq!(fixture.files[0].text, "fn a() {}\n");
    assert_eq!(fixture.files[0].markers, vec![3]);
    assert_eq!(fixture.file_at("/src/b.rs").markers, vec![9, 19]);
}
