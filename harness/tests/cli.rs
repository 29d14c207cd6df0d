//! The `vipt` binary end to end: exit statuses, one-line errors, deterministic JSON, and the
//! campaign → reproducer → replay → shrink round trip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vipt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vipt")).args(args).output().expect("vipt runs")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vipt-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn assert_user_error(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(2), "{what}: status {:?}", o.status);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: stderr is not one line: {err:?}");
    assert!(err.starts_with("vipt: "), "{what}: {err:?}");
}

#[test]
fn bad_input_is_one_line_and_status_2() {
    assert_user_error(
        &vipt(&["campaign", "--lineage", "no-such-kernel", "--seeds", "0..1"]),
        "unknown lineage",
    );
    assert_user_error(&vipt(&["check", "--lineage", "nope"]), "unknown lineage in check");
    for bad in ["5..2", "x..3", "1..2..3", ""] {
        assert_user_error(&vipt(&["campaign", "--seeds", bad]), bad);
    }
    assert_user_error(&vipt(&["replay", "/no/such/file.json"]), "missing file");
    assert_user_error(&vipt(&["frobnicate"]), "unknown command");
}

fn campaign_json(jobs: &str, out: &Path) -> serde_json::Value {
    let o = vipt(&[
        "campaign",
        "--json",
        "--jobs",
        jobs,
        "--seeds",
        "0..150",
        "--lineage",
        "linux-2.6.14",
        "--lineage",
        "pipt",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("campaign --json prints one JSON object")
}

fn without_seconds(mut v: serde_json::Value) -> serde_json::Value {
    for l in v["lineages"].as_array_mut().unwrap() {
        let m = l.as_object_mut().unwrap();
        m.remove("seconds_to_first");
        m.remove("seconds");
    }
    v
}

#[test]
fn campaign_json_is_the_same_at_any_job_count() {
    let d = tmpdir("jobs");
    let a = campaign_json("1", &d.join("a"));
    let b = campaign_json("2", &d.join("b"));
    let l = &a["lineages"][0];
    for key in ["name", "scenarios", "violations", "first_violation_seed", "seconds_to_first"] {
        assert!(l.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(a["lineages"][0]["name"], "linux-2.6.14");
    assert!(a["lineages"][0]["violations"].as_u64().unwrap() > 0);
    assert_eq!(a["lineages"][1]["violations"], 0);
    assert!(a["lineages"][1]["first_violation_seed"].is_null());
    assert!(a["lineages"][1]["seconds_to_first"].is_null());
    let strip_paths = |mut v: serde_json::Value| {
        for l in v["lineages"].as_array_mut().unwrap() {
            l.as_object_mut().unwrap().remove("reproducer");
        }
        v
    };
    assert_eq!(strip_paths(without_seconds(a)), strip_paths(without_seconds(b)));
}

#[test]
fn reproducers_replay_shrink_and_reject_tampering() {
    let d = tmpdir("repro");
    let v = campaign_json("2", &d);
    let path = v["lineages"][0]["reproducer"].as_str().expect("a reproducer was written").to_string();
    let text = std::fs::read_to_string(&path).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fingerprint = recorded["expect"]["fingerprint"].as_str().unwrap().to_string();

    let r = vipt(&["replay", "--json", &path]);
    assert_eq!(r.status.code(), Some(1), "a reproducing replay exits 1");
    let out: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(out["reproduced"], true);
    assert_eq!(out["fingerprint"].as_str(), Some(fingerprint.as_str()));

    let min = d.join("min.json");
    let s = vipt(&["shrink", &path, "-o", min.to_str().unwrap()]);
    assert_eq!(s.status.code(), Some(0), "{}", String::from_utf8_lossy(&s.stderr));
    let shrunk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&min).unwrap()).unwrap();
    let ops = |v: &serde_json::Value| {
        v["workload"]["programs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_array().unwrap().len())
            .sum::<usize>()
    };
    assert!(ops(&shrunk) <= ops(&recorded));
    let r2 = vipt(&["replay", "--json", min.to_str().unwrap()]);
    assert_eq!(r2.status.code(), Some(1));
    let out2: serde_json::Value = serde_json::from_slice(&r2.stdout).unwrap();
    assert_eq!(out2["reproduced"], true);
    assert_eq!(out2["fingerprint"], shrunk["expect"]["fingerprint"]);

    let truncated = d.join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    assert_user_error(&vipt(&["replay", truncated.to_str().unwrap()]), "truncated reproducer");
    let edits = [
        text.replace("\"version\": 1", "\"version\": 99"),
        text.replace("\"lineage\": \"linux-2.6.14\"", "\"lineage\": \"linux-9\""),
        text.replace("\"preset\": \"tiny\"", "\"preset\": \"vax\""),
        text.replacen('{', "{\"surprise\": 1,", 1),
    ];
    for (i, e) in edits.iter().enumerate() {
        assert_ne!(e, &text, "edit {i} changed nothing");
        let p = d.join(format!("edited{i}.json"));
        std::fs::write(&p, e).unwrap();
        assert_user_error(&vipt(&["replay", p.to_str().unwrap()]), &format!("edit {i}"));
        assert_user_error(&vipt(&["shrink", p.to_str().unwrap()]), &format!("shrink of edit {i}"));
    }
}

#[test]
fn check_exits_1_on_a_violation_and_0_when_clean() {
    let d = tmpdir("check");
    let out = d.to_str().unwrap();
    assert_eq!(
        vipt(&["check", "--lineage", "linux-2.5-rmap", "--seeds", "0..40", "--out", out]).status.code(),
        Some(1)
    );
    assert_eq!(
        vipt(&["check", "--lineage", "linux-6.x", "--seeds", "0..40", "--out", out]).status.code(),
        Some(0)
    );
}

#[test]
fn lineages_lists_the_registry() {
    let o = vipt(&["lineages", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> =
        v["lineages"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    for n in [
        "linux-2.4",
        "linux-2.5-rmap",
        "linux-2.6.14",
        "linux-2.6.15",
        "recheck",
        "tmpalias",
        "linux-6.0",
        "linux-6.10",
        "linux-6.x",
        "whole-cache",
        "pipt",
    ] {
        assert!(names.contains(&n), "{n} missing");
    }
}
