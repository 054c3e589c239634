use super::*;

use numvault::{ArrayRef, OpenOptions};

fn d(name: &str, kind: DiffKind) -> ArrayDiff {
    ArrayDiff {
        name: name.to_string(),
        kind,
        renamed_from: None,
        before: Some((DType::F32, vec![10, 4])),
        after: Some((DType::F32, vec![10, 4])),
        deleted: Vec::new(),
        appended: Vec::new(),
        replaced: Vec::new(),
    }
}

#[test]
fn ranges_are_half_open_and_cut_short_in_text() {
    assert_eq!(ranges_str(&[], 8), "");
    assert_eq!(ranges_str(&[(0, 3), (7, 8)], 8), "0..3, 7..8");
    let many: Vec<(u64, u64)> = (0..12).map(|i| (2 * i, 2 * i + 1)).collect();
    let s = ranges_str(&many, 3);
    assert_eq!(s, "0..1, 2..3, 4..5, ... (9 more ranges)");
    assert_eq!(rows_in(&[(0, 3), (7, 8)]), 4);
}

#[test]
fn diff_text_and_json() {
    let mut m = d("feat/a", DiffKind::Modified);
    m.after = Some((DType::F32, vec![12, 4]));
    m.deleted = vec![(0, 1)];
    m.appended = vec![(9, 12)];
    m.replaced = vec![(2, 4), (6, 7)];
    let lines = diff_lines(&m, 6);
    assert_eq!(
        lines[0],
        "modified   feat/a  (10, 4) float32 -> (12, 4) float32"
    );
    assert_eq!(lines[1].trim(), "deleted 1 row: 0..1");
    assert_eq!(lines[2].trim(), "appended 3 rows: 9..12");
    assert_eq!(lines[3].trim(), "replaced 3 rows: 2..4, 6..7");
    let j = diff_json(&m);
    assert_eq!(j["kind"], "modified");
    assert_eq!(j["before"]["shape"], json!([10, 4]));
    assert_eq!(j["after"]["dtype"], "float32");
    assert_eq!(j["replaced"], json!([[2, 4], [6, 7]]));
    assert_eq!(j["rows_replaced"], 3);

    let mut r = d("new", DiffKind::Renamed);
    r.renamed_from = Some("old".into());
    assert_eq!(
        diff_lines(&r, 10)[0],
        "renamed    old -> new  (10, 4) float32"
    );
    assert_eq!(diff_json(&r)["renamed_from"], "old");
    let mut a = d("x", DiffKind::Added);
    a.before = None;
    assert_eq!(diff_json(&a)["before"], Value::Null);
    assert!(diff_lines(&a, 1)[0].ends_with("x  (10, 4) float32"));
    let w = diff_lines(&d("w", DiffKind::Rewritten), 1);
    assert!(w[1].contains("not known without reading data"));
}

#[test]
fn what_a_restore_changes() {
    let mut ren = d("y", DiffKind::Renamed);
    ren.renamed_from = Some("x".into());
    let diffs = vec![
        d("a", DiffKind::Modified),
        d("b", DiffKind::Added),
        d("c", DiffKind::Dropped),
        ren,
    ];
    let (restored, dropped, unchanged) = restore_effect(&diffs, &[]);
    assert_eq!(restored, ["a", "c", "x"]);
    assert_eq!(dropped, ["b", "y"]);
    assert!(unchanged.is_empty());
    let names: Vec<String> = ["x", "a", "z"].iter().map(|s| s.to_string()).collect();
    let (restored, dropped, unchanged) = restore_effect(&diffs, &names);
    assert_eq!(restored, ["a", "x"]);
    assert!(dropped.is_empty());
    assert_eq!(unchanged, ["z"]);
}

fn run(args: &[&str]) -> i32 {
    let mut v = vec!["numvault", "--quiet"];
    v.extend_from_slice(args);
    crate::run(v)
}

#[test]
fn verbs_on_a_store_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    let ps = p.to_str().unwrap();
    {
        let s = Store::open(&p, OpenOptions::default()).unwrap();
        s.save("a", ArrayRef::of(&[3], &[1u32, 2, 3])).unwrap();
        assert_eq!(s.format_version(), numvault::FORMAT_VERSION);
        s.close().unwrap();
    }
    // No versions yet: listing works, naming one is a usage error.
    assert_eq!(run(&["versions", ps, "--json"]), 0);
    assert_eq!(run(&["info", ps, "--version", "1", "--json"]), 2);
    assert_eq!(run(&["diff", ps, "nope", "--json"]), 2);
    assert_eq!(run(&["snapshot", ps, "--tag", "base", "--json"]), 0);
    // The tag is taken; an invalid tag is refused.
    assert_eq!(run(&["snapshot", ps, "--tag", "base", "--json"]), 2);
    assert_eq!(run(&["snapshot", ps, "--tag", "a//b", "--json"]), 2);
    {
        let s = Store::open(&p, OpenOptions::default()).unwrap();
        let vs = s.versions(None).unwrap();
        assert_eq!(vs.len(), 1);
        assert_eq!(vs[0].tag.as_deref(), Some("base"));
        s.append("a", ArrayRef::of(&[1], &[4u32])).unwrap();
        s.close().unwrap();
    }
    for args in [
        vec!["info", ps, "--version", "base"],
        vec!["ls", ps, "--version", "base"],
        vec!["show", ps, "a", "--version", "base"],
        vec!["verify", ps, "--version", "base"],
        vec!["diff", ps, "base"],
        vec!["versions", ps, "a"],
    ] {
        assert_eq!(run(&[&args[..], &["--json"]].concat()), 0, "{args:?}");
    }
    let s = Store::open(&p, OpenOptions::read_only()).unwrap();
    let id = s.versions(None).unwrap()[0].id;
    let d = s.diff(VersionRef::Id(id), None).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].appended, vec![(3, 4)]);
    drop(s);
    assert_eq!(run(&["restore", ps, "base", "nope", "--json"]), 2);
    assert_eq!(run(&["restore", ps, &id.to_string(), "--json"]), 0);
    let s = Store::open(&p, OpenOptions::read_only()).unwrap();
    assert_eq!(s.shape("a").unwrap(), vec![3]);
    drop(s);
    assert_eq!(run(&["delete-snapshot", ps, "base", "--json"]), 0);
    assert_eq!(run(&["delete-snapshot", ps, "base", "--json"]), 2);
    assert_eq!(run(&["gc", ps, "--json"]), 0);
    assert_eq!(run(&["upgrade", ps, "--json"]), 0);
}

#[test]
fn a_tag_made_of_digits_is_found_when_no_id_matches() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    s.save("a", ArrayRef::of(&[2], &[1u8, 2])).unwrap();
    let id = s.snapshot(Some("2024")).unwrap();
    assert_ne!(id, 2024);
    assert_eq!(resolve(&s, "2024").unwrap(), id);
    assert_eq!(resolve(&s, &id.to_string()).unwrap(), id);
    assert!(matches!(resolve(&s, "7777"), Err(Fail::Usage(m)) if m.contains("7777")));
}
