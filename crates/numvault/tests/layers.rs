//! The engine's folders are its layers: a module may use only modules of
//! lower layers (and itself). This test reads the sources and fails on any
//! `crate::<module>` path that points upward or sideways, so that an import
//! cycle between folders cannot come back unnoticed. Test code (after
//! `#[cfg(test)]`, and `tests.rs` files) may use anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top to bottom. Modules on one line form one layer and may not use each
/// other.
const LAYERS: &[&[&str]] = &[
    &["fuzzing"],
    &["api"],
    &["inplace", "audit"],
    &["txn"],
    &["read"],
    &["recovery"],
    &["log"],
    &["data"],
    &["format"],
    &["model"],
    &["io"],
    &["util"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`src/txn/commit.rs` ->
/// `txn`, `src/util.rs` -> `util`); `None` for lib.rs.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib").then_some(name)
}

/// Every `crate::<module>` used in non-test, non-comment code.
fn used_modules(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

#[test]
fn no_module_uses_a_higher_or_sibling_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut bad = Vec::new();
    let mut checked = 0;
    for f in &files {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        let mine =
            rank(&m).unwrap_or_else(|| panic!("{}: module '{m}' is in no layer", f.display()));
        for used in used_modules(&std::fs::read_to_string(f).unwrap()) {
            checked += 1;
            match rank(&used) {
                // Re-exports at the crate root (`crate::Store`, ...) are
                // the public API; only the layer modules are ranked.
                None => {}
                Some(r) if used == m || r > mine => {}
                Some(_) => bad.push(format!("{} ({m}) uses crate::{used}", f.display())),
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} paths checked: is the parser broken?"
    );
    assert!(
        bad.is_empty(),
        "upward or sideways imports:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_parser_sees_paths_and_skips_comments_and_tests() {
    let text = "use crate::txn::Engine;\n// crate::api\nfn f() { crate::model::x(); }\n#[cfg(test)]\nuse crate::api::Store;";
    let got: Vec<String> = used_modules(text).into_iter().collect();
    assert_eq!(got, vec!["model".to_string(), "txn".to_string()]);
}
