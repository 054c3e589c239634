use super::*;

#[test]
fn rows_specs() {
    assert_eq!(parse_rows("0:10", 100).unwrap(), (0, 10));
    assert_eq!(parse_rows("-5:", 100).unwrap(), (95, 100));
    assert_eq!(parse_rows(":", 7).unwrap(), (0, 7));
    assert_eq!(parse_rows("90:200", 100).unwrap(), (90, 100));
    assert_eq!(parse_rows("5:2", 100).unwrap(), (5, 5));
    assert_eq!(parse_rows("-1", 100).unwrap(), (99, 100));
    assert!(parse_rows("100", 100).is_err());
    assert!(parse_rows("a:b", 100).is_err());
}

#[test]
fn elements() {
    assert_eq!(element(DType::F32, &1.5f32.to_le_bytes()).0, "1.5");
    assert_eq!(element(DType::F32, &6f32.to_le_bytes()).0, "6.0");
    assert_eq!(element(DType::F32, &0.1f32.to_le_bytes()).0, "0.1");
    assert_eq!(element(DType::F64, &f64::NAN.to_le_bytes()).1, json!("nan"));
    assert_eq!(element(DType::I16, &(-3i16).to_le_bytes()).0, "-3");
    assert_eq!(element(DType::Bool, &[1]).0, "True");
    let (s, _) = nested(DType::U8, &[2, 2], &[1, 2, 3, 4]);
    assert_eq!(s, "[[1, 2], [3, 4]]");
}

#[test]
fn since_forms() {
    assert_eq!(parse_since("120").unwrap(), (121, 0));
    let (_, t) = parse_since("2026-11-21T10:00:00Z").unwrap();
    assert!(t > 0);
    let (_, t) = parse_since("2h").unwrap();
    assert!(t > 0 && t < now_ns());
    assert!(parse_since("yesterday-ish").is_err());
}

#[test]
fn log_shows_version_ops_with_their_version() {
    use numvault::{OpKind, OpSummary};
    let op = |kind, array: &str, rows| OpSummary {
        kind,
        array: array.to_string(),
        to: None,
        rows,
    };
    let (j, array, rows) = log_op(12, &op(OpKind::Snapshot, "nightly", 0));
    assert_eq!(
        (array.as_str(), rows.as_str()),
        ("version 12 'nightly'", "")
    );
    assert_eq!(j["version"], 12);
    assert_eq!(j["tag"], "nightly");
    assert_eq!(j["array"], "");
    let (_, array, _) = log_op(12, &op(OpKind::Snapshot, "", 0));
    assert_eq!(array, "version 12");
    let (j, array, rows) = log_op(20, &op(OpKind::DeleteSnapshot, "", 12));
    assert_eq!((array.as_str(), rows.as_str()), ("version 12", ""));
    assert_eq!(
        (j["version"].clone(), j["rows"].clone()),
        (json!(12), json!(0))
    );
    let (j, array, _) = log_op(21, &op(OpKind::Restore, "feat/a", 12));
    assert_eq!(array, "feat/a <- version 12");
    assert_eq!(
        (j["array"].clone(), j["version"].clone()),
        (json!("feat/a"), json!(12))
    );
    let (j, array, rows) = log_op(22, &op(OpKind::Append, "feat/a", 5));
    assert_eq!((array.as_str(), rows.as_str()), ("feat/a", "5"));
    assert_eq!(j.get("version"), None);
}
