//! Argument parsing.

use super::*;
use clap::CommandFactory;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("numvault").chain(args.iter().copied()))
}

#[test]
fn the_command_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn program_version_names_the_engine_format() {
    assert!(VERSION.contains(&format!("format version {}", numvault::FORMAT_VERSION)));
    let e = parse(&["--version"]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
    assert_eq!(parse(&["-V"]).unwrap_err().exit_code(), 0);
}

#[test]
fn version_option_on_the_reading_verbs() {
    for (args, want) in [
        (vec!["info", "S", "--version", "3"], "3"),
        (vec!["info", "--version", "nightly", "S"], "nightly"),
        (vec!["ls", "S", "--version=3", "--prefix", "f/"], "3"),
        (
            vec!["show", "S", "a", "--version", "3", "--rows", "-5:"],
            "3",
        ),
        (vec!["verify", "S", "--quick", "--version", "t"], "t"),
        (
            vec!["export", "S", "a", "--to", "x.npy", "--version", "9"],
            "9",
        ),
    ] {
        let cli = parse(&args).unwrap();
        let at = match cli.cmd {
            Cmd::Info { at, .. }
            | Cmd::Ls { at, .. }
            | Cmd::Show { at, .. }
            | Cmd::Verify { at, .. }
            | Cmd::Export { at, .. } => at.at,
            other => panic!("{other:?}"),
        };
        assert_eq!(at.as_deref(), Some(want), "{args:?}");
    }
    let Cmd::Info { at, .. } = parse(&["info", "S"]).unwrap().cmd else {
        panic!()
    };
    assert_eq!(at.at, None);
    // A value is required; verbs without the option refuse it.
    assert!(parse(&["info", "S", "--version"]).is_err());
    assert!(parse(&["log", "S", "--version", "3"]).is_err());
    assert!(parse(&["compact", "S", "--version", "3"]).is_err());
}

#[test]
fn version_verbs() {
    let Cmd::Snapshot { c, tag } = parse(&["snapshot", "S", "--tag", "t", "--json"])
        .unwrap()
        .cmd
    else {
        panic!()
    };
    assert!(c.json);
    assert_eq!(tag.as_deref(), Some("t"));
    let Cmd::Diff { a, b, .. } = parse(&["diff", "S", "3"]).unwrap().cmd else {
        panic!()
    };
    assert_eq!((a.as_str(), b), ("3", None));
    let Cmd::Diff { b, .. } = parse(&["diff", "S", "3", "t"]).unwrap().cmd else {
        panic!()
    };
    assert_eq!(b.as_deref(), Some("t"));
    assert!(parse(&["diff", "S"]).is_err());
    let Cmd::Restore { v, names, .. } = parse(&["restore", "S", "7", "a", "b/c"]).unwrap().cmd
    else {
        panic!()
    };
    assert_eq!((v.as_str(), names.len()), ("7", 2));
    let Cmd::Restore { names, .. } = parse(&["restore", "S", "7"]).unwrap().cmd else {
        panic!()
    };
    assert!(names.is_empty());
    let Cmd::Versions { array, .. } = parse(&["versions", "S", "a"]).unwrap().cmd else {
        panic!()
    };
    assert_eq!(array.as_deref(), Some("a"));
    assert!(matches!(
        parse(&["delete-snapshot", "S", "7"]).unwrap().cmd,
        Cmd::DeleteSnapshot { .. }
    ));
    assert!(parse(&["delete-snapshot", "S"]).is_err());
    assert!(matches!(parse(&["gc", "S"]).unwrap().cmd, Cmd::Gc { .. }));
    assert!(matches!(
        parse(&["upgrade", "S", "--json"]).unwrap().cmd,
        Cmd::Upgrade { c } if c.json
    ));
    let help = Cli::command().render_help().to_string();
    for verb in [
        "snapshot",
        "versions",
        "diff",
        "restore",
        "delete-snapshot",
        "gc",
        "upgrade",
    ] {
        assert!(help.contains(verb), "{verb}");
    }
}
