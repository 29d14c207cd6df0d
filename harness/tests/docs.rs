//! The documentation names only what exists: every repository path the README and the docs
//! cite is a file of the repository, and every test and identifier a `docs/FIDELITY.md` row
//! cites is defined in the file the row names before it.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The documents whose citations are checked.
fn documents() -> Vec<String> {
    let mut docs = vec!["README.md".to_string()];
    for dir in ["docs", "benches", "emu", "tmpalias", "harness"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else { continue };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .collect();
        names.sort();
        docs.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
    }
    docs
}

/// The backticked spans of `text`, in order.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// A repository path: has a directory and ends in a source or document extension, and is not a
/// kernel source path or a pattern.
fn repo_path(tok: &str) -> bool {
    let kernel = ["arch/", "include/", "mm/", "kernel/", "Documentation/", "fs/", "lib/"];
    tok.contains('/')
        && [".rs", ".md", ".json", ".svg", ".png", ".yaml", ".yml", ".sh", ".toml"]
            .iter()
            .any(|e| tok.ends_with(e))
        && !kernel.iter().any(|k| tok.starts_with(k))
        && !tok.contains(|c: char| c.is_whitespace() || "*<>{}$".contains(c))
        && !tok.starts_with("..")
        && !tok.starts_with('/')
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `name` is defined in `body`: an item (`fn`, `struct`, …), a field or variant at the start of
/// a line, or a test made by a macro (`name: Preset::…` or `name =>`).
fn defined(name: &str, body: &str) -> bool {
    let item = ["fn ", "struct ", "enum ", "const ", "trait ", "type ", "static ", "mod ", "macro_rules! "];
    let whole = |s: &str, at: usize| s[at + name.len()..].chars().next().is_none_or(|c| !is_ident_char(c));
    for kw in item {
        let pat = format!("{kw}{name}");
        let mut from = 0;
        while let Some(i) = body[from..].find(&pat) {
            let at = from + i + kw.len();
            let before_ok = (from + i == 0) || !is_ident_char(body[..from + i].chars().next_back().unwrap());
            if before_ok && whole(body, at) {
                return true;
            }
            from = at;
        }
    }
    body.lines().any(|line| {
        let mut l = line.trim_start();
        for p in ["pub(crate) ", "pub(super) ", "pub "] {
            l = l.strip_prefix(p).unwrap_or(l);
        }
        l.strip_prefix(name).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.starts_with([':', ',', '(', '{']) || rest.starts_with("=>")
        })
    })
}

#[test]
fn every_cited_repository_path_exists() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = read(&doc);
        let dir = Path::new(&doc).parent().unwrap_or(Path::new("")).to_path_buf();
        for tok in code_spans(&text) {
            if repo_path(tok) {
                checked += 1;
                // A crate's own document may name its files from the crate's `src/`.
                let found =
                    [root().join(tok), root().join(&dir).join(tok), root().join(&dir).join("src").join(tok)];
                if !found.iter().any(|p| p.exists()) {
                    missing.push(format!("{doc}: `{tok}`"));
                }
            }
        }
        // Markdown link targets are relative to the document.
        for part in text.split("](").skip(1) {
            let target = part.split([')', '#']).next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.contains(' ') {
                continue;
            }
            checked += 1;
            if !root().join(&dir).join(target).exists() {
                missing.push(format!("{doc}: link ({target})"));
            }
        }
    }
    assert!(checked > 50, "only {checked} citations found: the scan is broken");
    assert!(missing.is_empty(), "cited but not in the repository:\n{}", missing.join("\n"));
}

#[test]
fn fidelity_rows_cite_what_is_defined() {
    let text = read("docs/FIDELITY.md");
    let mut bad = Vec::new();
    let (mut rows, mut tests) = (0, 0);
    for line in text.lines() {
        if !line.starts_with('|') || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = split_cells(line);
        if cells.len() != 5 || cells[0] == "kernel function or hardware rule" {
            continue;
        }
        rows += 1;
        for (cell, what) in [(cells[2], "identifier"), (cells[4], "test")] {
            let mut file: Option<&str> = None;
            for tok in code_spans(cell) {
                if repo_path(tok) {
                    file = Some(tok);
                    continue;
                }
                let simple = tok.split("::").all(|p| !p.is_empty() && p.chars().all(is_ident_char));
                if !simple {
                    continue;
                }
                let Some(f) = file else {
                    if what == "test" {
                        bad.push(format!("test `{tok}` with no file before it"));
                    }
                    continue;
                };
                let name = tok.rsplit("::").next().unwrap();
                if what == "test" {
                    tests += 1;
                }
                let body = read(f);
                if !defined(name, &body) {
                    bad.push(format!("{f}: {what} `{tok}` is not defined there"));
                }
            }
        }
    }
    assert!(rows > 100 && tests > 100, "{rows} rows, {tests} tests: the table was not parsed");
    assert!(bad.is_empty(), "docs/FIDELITY.md cites what does not exist:\n{}", bad.join("\n"));
}

/// The cells of a table row, splitting on `|` that is not escaped.
fn split_cells(line: &str) -> Vec<&str> {
    let mut cells = Vec::new();
    let (mut start, mut prev) = (1, ' ');
    for (i, c) in line.char_indices().skip(1) {
        if c == '|' && prev != '\\' {
            cells.push(line[start..i].trim());
            start = i + 1;
        }
        prev = c;
    }
    cells
}
