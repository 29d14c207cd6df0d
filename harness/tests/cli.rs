//! The `vipt` binary end to end: exit statuses, one-line errors, deterministic JSON, the
//! campaign → reproducer → replay → shrink round trip, and what happens when the environment
//! gets in the way (closed pipes, full disks, unusable output, too few threads).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vipt");

fn vipt(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("vipt runs")
}

/// Runs `cmd` to its end, failing the test if it takes longer than `secs`.
fn within(mut cmd: Command, secs: u64, what: &str) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("vipt runs");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn vipt_within(args: &[&str], secs: u64) -> Output {
    let mut c = Command::new(BIN);
    c.args(args);
    within(c, secs, &args.join(" "))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vipt-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_user_error(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(2), "{what}: status {:?}, stderr {}", o.status, stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: stderr is not one line: {err:?}");
    assert!(err.starts_with("vipt: "), "{what}: {err:?}");
    assert!(err.len() < 600, "{what}: a {}-byte message", err.len());
}

/// Status 2 and one line on stderr that says `needle`.
fn assert_error_says(o: &Output, what: &str, needle: &str) {
    assert_user_error(o, what);
    assert!(stderr(o).contains(needle), "{what}: {:?} does not say {needle:?}", stderr(o));
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(o)))
}

/// The committed reproducer of the fuzz corpus: one CPU, two stores, a violation.
fn small_reproducer() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/reproducer/seed-valid-shrunk.json");
    std::fs::read_to_string(p).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_input_is_one_line_and_status_2() {
    assert_user_error(
        &vipt(&["campaign", "--lineage", "no-such-kernel", "--seeds", "0..1"]),
        "unknown lineage",
    );
    assert_user_error(&vipt(&["check", "--lineage", "nope"]), "unknown lineage in check");
    for bad in ["5..2", "x..3", "1..2..3", "", "3..=1"] {
        assert_user_error(&vipt(&["campaign", "--seeds", bad]), bad);
    }
    assert_user_error(&vipt(&["replay", "/no/such/file.json"]), "missing file");
    assert_user_error(&vipt(&["frobnicate"]), "unknown command");
    assert_user_error(&vipt(&["campaign", "--jobs", "0", "--seeds", "0"]), "no jobs");
    assert_user_error(&vipt(&["campaign", "--max-steps", "0", "--seeds", "0"]), "no steps");
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
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json(&o)
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
    for key in ["name", "scenarios", "violations", "first_violation_seed", "seconds_to_first", "unfinished"] {
        assert!(l.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(a["lineages"][0]["name"], "linux-2.6.14");
    assert!(a["lineages"][0]["violations"].as_u64().unwrap() > 0);
    assert_eq!(a["lineages"][1]["violations"], 0);
    assert_eq!(a["lineages"][1]["unfinished"], 0);
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
    let out = json(&r);
    assert_eq!(out["reproduced"], true);
    assert_eq!(out["fingerprint"].as_str(), Some(fingerprint.as_str()));

    let min = d.join("min.json");
    let s = vipt(&["shrink", &path, "-o", min.to_str().unwrap()]);
    assert_eq!(s.status.code(), Some(0), "{}", stderr(&s));
    let said = String::from_utf8_lossy(&s.stdout);
    assert!(said.starts_with("shrunk in "), "{said}");
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
    let out2 = json(&r2);
    assert_eq!(out2["reproduced"], true);
    assert_eq!(out2["fingerprint"], shrunk["expect"]["fingerprint"]);

    let truncated = write(&d, "truncated.json", &text[..text.len() / 2]);
    assert_user_error(&vipt(&["replay", &truncated]), "truncated reproducer");
    let edits = [
        text.replace("\"version\": 2", "\"version\": 99"),
        text.replace("\"lineage\": \"linux-2.6.14\"", "\"lineage\": \"linux-9\""),
        text.replace("\"preset\": \"tiny\"", "\"preset\": \"vax\""),
        text.replacen('{', "{\"surprise\": 1,", 1),
    ];
    for (i, e) in edits.iter().enumerate() {
        assert_ne!(e, &text, "edit {i} changed nothing");
        let p = write(&d, &format!("edited{i}.json"), e);
        assert_user_error(&vipt(&["replay", &p]), &format!("edit {i}"));
        assert_user_error(&vipt(&["shrink", &p]), &format!("shrink of edit {i}"));
    }
}

#[test]
fn a_reproducer_of_an_earlier_format_version_is_refused_by_name() {
    let d = tmpdir("version");
    let v1 = small_reproducer().replace("\"version\": 2", "\"version\": 1");
    let p = write(&d, "v1.json", &v1);
    assert_error_says(&vipt(&["replay", &p]), "version 1", "version 1 is not supported");
    assert_error_says(&vipt(&["shrink", &p]), "version 1", "this build reads version 2");
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
    let v = json(&o);
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
    // Which families each can run, for `--family`.
    let runs = |name: &str| {
        let l = v["lineages"].as_array().unwrap().iter().find(|l| l["name"] == name).unwrap();
        l["runs_families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(runs("linux-6.x"), ["mixed", "sharing"]);
    assert_eq!(runs("hash-cas"), ["hash"]);
}

#[test]
fn help_gives_the_exit_statuses() {
    for args in [&["--help"][..], &["check", "--help"]] {
        let o = vipt(args);
        assert_eq!(o.status.code(), Some(0));
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains("Exit status:"), "{help}");
        for line in [
            "  0  clean",
            "  1  a violation",
            "  2  bad input or environment",
            "  3  no violation, but a scenario did not finish",
        ] {
            assert!(help.contains(line), "{args:?}: no {line:?}");
        }
    }
}

// ----- environment: threads, pipes, full disks, output directories ------------------------

/// Runs as root, where `nobody` runs nothing: a limit on `nobody`'s processes then counts
/// exactly the threads of the one `vipt` started.
fn nobody_is_idle() -> bool {
    let root = Command::new("id").arg("-u").output().ok().is_some_and(|o| o.stdout.starts_with(b"0\n"));
    let idle = Command::new("ps")
        .args(["-u", "65534", "-o", "pid="])
        .output()
        .ok()
        .is_some_and(|o| o.stdout.is_empty());
    root && idle
}

/// `prlimit` to `nproc` processes, as the unprivileged user `nobody` when running as root (the
/// limit does not bind root); `None` where that cannot be arranged.
fn limited(nproc: u32) -> Option<Command> {
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !have("prlimit") {
        return None;
    }
    let root = Command::new("id").arg("-u").output().ok().is_some_and(|o| o.stdout.starts_with(b"0\n"));
    let mut c = Command::new("prlimit");
    c.arg(format!("--nproc={nproc}:{nproc}")).arg("--");
    if root {
        if !have("setpriv") {
            return None;
        }
        c.args(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    c.arg(BIN);
    Some(c)
}

/// A directory anyone may write to (the limited runs may be another user's).
fn open_dir(name: &str) -> PathBuf {
    let d = tmpdir(name);
    let _ = Command::new("chmod").arg("777").arg(&d).status();
    d
}

#[test]
fn a_campaign_that_cannot_start_its_threads_runs_on_those_it_has() {
    let Some(mut c) = limited(3) else {
        eprintln!("no prlimit (or setpriv as root): thread limits not tested");
        return;
    };
    let d = open_dir("nproc");
    c.args(["check", "--lineage", "pipt", "--seeds", "0..640", "--jobs", "40", "--json", "--out"])
        .arg(d.join("o"));
    let o = within(c, 120, "campaign under a thread limit");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["lineages"][0]["scenarios"], 640);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("vipt: warning: only ") && err.contains("of 40 worker threads"), "{err}");
}

#[test]
fn jobs_beyond_the_chunks_of_seeds_start_no_threads() {
    let d = open_dir("jobs-cap");
    // 50 seeds are 4 chunks: 4 workers, whatever --jobs says.
    let o = vipt_within(
        &[
            "check",
            "--lineage",
            "linux-6.x",
            "--seeds",
            "0..50",
            "--jobs",
            "100000",
            "--json",
            "--out",
            d.to_str().unwrap(),
        ],
        120,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["lineages"][0]["scenarios"], 50);
    assert_eq!(stderr(&o), "");
    // With room for exactly those 4 (and the process's own), no thread fails to start.
    if let Some(mut c) = limited(5).filter(|_| nobody_is_idle()) {
        c.args(["check", "--lineage", "pipt", "--seeds", "0..50", "--jobs", "100000", "--out"])
            .arg(d.join("o"));
        let o = within(c, 120, "capped campaign under a thread limit");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stderr(&o), "", "a worker more than the chunks was tried");
    }
}

#[test]
fn seeds_up_to_the_last_one_run_and_end() {
    let d = tmpdir("last-seeds");
    let out = d.to_str().unwrap();
    for (seeds, n) in [
        ("18446744073709551600", 1),
        ("18446744073709551615", 1),
        ("18446744073709551600..=18446744073709551615", 16),
        ("18446744073709551610..18446744073709551615", 5),
    ] {
        let o = vipt_within(&["check", "--lineage", "pipt", "--seeds", seeds, "--json", "--out", out], 60);
        assert_eq!(o.status.code(), Some(0), "{seeds}: {}", stderr(&o));
        assert_eq!(json(&o)["lineages"][0]["scenarios"], n, "{seeds}");
    }
    assert_error_says(
        &vipt(&["check", "--lineage", "pipt", "--seeds", "-1..5"]),
        "negative",
        "seed `-1` is negative",
    );
    assert_error_says(
        &vipt(&["check", "--lineage", "pipt", "--seeds", "18446744073709551616"]),
        "past the end",
        "past the last seed",
    );
}

#[test]
fn an_endless_file_is_refused_before_it_is_read() {
    let o = vipt_within(&["replay", "/dev/zero"], 30);
    assert_error_says(&o, "/dev/zero", "larger than 67108864 bytes");
    let o = vipt_within(&["import-fuzz", "/dev/zero", "-o", "/tmp/vipt-never-written.json"], 30);
    assert_error_says(&o, "/dev/zero as fuzz input", "larger than 1048576 bytes");
}

#[test]
fn a_failed_write_to_stdout_is_status_2_and_a_closed_pipe_ends_quietly() {
    let d = tmpdir("stdout");
    let full = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args).stdout(std::fs::File::create("/dev/full").unwrap()).stderr(Stdio::piped());
        c.output().unwrap()
    };
    let out = d.to_str().unwrap();
    let o = full(&["check", "--lineage", "linux-2.4", "--seeds", "0..40", "--out", out]);
    assert_error_says(&o, "check > /dev/full", "cannot write to standard output");
    assert_error_says(&full(&["lineages"]), "lineages > /dev/full", "No space left");
    assert_error_says(&full(&["--help"]), "--help > /dev/full", "No space left");

    // `vipt replay FILE --steps | head -1`: an output longer than a pipe holds, its reader
    // gone after one line.
    let o = json(&vipt(&["campaign", "--lineage", "linux-2.4", "--seeds", "0..40", "--json", "--out", out]));
    let repro = o["lineages"][0]["reproducer"].as_str().unwrap().to_string();
    let mut child = Command::new(BIN)
        .args(["replay", "--steps", &repro])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(first.starts_with("lineage linux-2.4"), "{first}");
    assert_eq!(o.status.code(), Some(1), "the replay's own status");
    assert_eq!(stderr(&o), "");
}

#[test]
fn an_unusable_out_fails_before_the_run() {
    let d = tmpdir("out");
    let file = write(&d, "a-file", "x");
    let under_file = format!("{file}/sub");
    for (out, says) in [
        (file.as_str(), "is not a directory"),
        ("/dev/null", "is not a directory"),
        (under_file.as_str(), "is not a directory"),
        ("/proc/vipt-out", "cannot write in /proc"),
    ] {
        let o = vipt_within(&["check", "--lineage", "linux-2.4", "--seeds", "0..2000", "--out", out], 20);
        assert_error_says(&o, out, says);
        assert!(o.stdout.is_empty(), "{out}: the campaign ran");
    }
    let repro = write(&d, "small.json", &small_reproducer());
    assert_error_says(
        &vipt(&["shrink", &repro, "-o", "/proc/x.json"]),
        "shrink -o /proc",
        "cannot write in /proc",
    );
    assert_error_says(
        &vipt(&["shrink", &repro, "-o", d.to_str().unwrap()]),
        "shrink -o DIR",
        "is a directory",
    );
}

// ----- unfinished scenarios ---------------------------------------------------------------

#[test]
fn an_unfinished_scenario_is_counted_recorded_and_has_status_3() {
    let d = tmpdir("unfinished");
    let out = d.to_str().unwrap();
    let o = vipt(&[
        "check",
        "--lineage",
        "linux-6.x",
        "--seeds",
        "0..5",
        "--max-steps",
        "100",
        "--json",
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let l = &json(&o)["lineages"][0];
    assert_eq!(l["unfinished"], 5);
    assert_eq!(l["unfinished_kinds"], serde_json::json!({ "deadlock": 0, "livelock": 0, "step_budget": 5 }));
    assert_eq!(l["first_unfinished_seed"], 0);
    assert!(l["first_unfinished"].as_str().unwrap().starts_with("step budget: "), "{l}");
    let repro = l["unfinished_reproducer"].as_str().expect("a reproducer of the unfinished seed").to_string();
    assert!(repro.ends_with("linux-6.x-seed0-unfinished.json"));

    let table =
        vipt(&["check", "--lineage", "linux-6.x", "--seeds", "0..5", "--max-steps", "100", "--out", out]);
    assert_eq!(table.status.code(), Some(3));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("unfinished: 0 deadlock, 0 livelock, 5 step budget; first: seed 0: step budget"),
        "{text}"
    );
    assert!(!text.contains("clean"), "{text}");

    let r = vipt(&["replay", &repro]);
    assert_eq!(r.status.code(), Some(3));
    let said = String::from_utf8_lossy(&r.stdout);
    assert!(
        said.contains(
            "reproduced: the run did not finish: step budget: the run used up its budget of 100 micro-steps"
        ),
        "{said}"
    );
    let s = vipt(&["shrink", &repro, "-o", d.join("min.json").to_str().unwrap()]);
    assert_eq!(s.status.code(), Some(0), "{}", stderr(&s));
    assert_eq!(vipt(&["replay", d.join("min.json").to_str().unwrap()]).status.code(), Some(3));

    // A violation wins over an unfinished scenario; campaign reports both and exits 0.
    let both = ["--lineage", "linux-2.4", "--seeds", "0..60", "--max-steps", "1500", "--json", "--out", out];
    let o = vipt(&[&["check"][..], &both].concat());
    assert_eq!(o.status.code(), Some(1));
    let l = &json(&o)["lineages"][0];
    assert!(l["violations"].as_u64().unwrap() > 0 && l["unfinished"].as_u64().unwrap() > 0, "{l}");
    assert_eq!(vipt(&[&["campaign"][..], &both].concat()).status.code(), Some(0));
}

// ----- reproducers: indices, shrinking, messages ------------------------------------------

#[test]
fn a_reproducer_naming_what_its_workload_lacks_is_refused() {
    let d = tmpdir("indices");
    let base: serde_json::Value = serde_json::from_str(&small_reproducer()).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        f(&mut v);
        v
    };
    // The base: one CPU storing to mapping 1 of process 0 (its two mappings are of file 0;
    // the workload has 3 processes and 3 files).
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            edit(&|v| v["workload"]["programs"][0][0]["map"] = 50.into()),
            "mapping 50, but process 0 has 2 mappings",
        ),
        (
            edit(&|v| v["workload"]["programs"][0][0]["proc"] = serde_json::json!({ "init": 9 })),
            "process 9, but the workload has 3",
        ),
        (
            edit(&|v| v["workload"]["programs"][0][0]["proc"] = serde_json::json!({ "child": 0 })),
            "child 0, but the program forks 0 times",
        ),
        (edit(&|v| v["workload"]["programs"][0][0]["page"] = 9.into()), "page 9"),
        (edit(&|v| v["workload"]["programs"][0][0]["word"] = 600.into()), "word 600"),
        (edit(&|v| v["workload"]["maps"][0]["proc"] = 7.into()), "mapping 0: process 7"),
        (
            edit(&|v| v["workload"]["maps"][0]["kind"]["file"] = 4.into()),
            "file 4, but the workload has 3 files",
        ),
        (edit(&|v| v["workload"]["cpus"] = 9.into()), "9 cpus, but the machine has 1..=4"),
        (
            edit(&|v| {
                let reclaim = serde_json::json!({
                    "op": "reclaim", "target": { "kind": "user", "proc": { "init": 1 }, "map": 0, "page": 0 }
                });
                v["workload"]["programs"][0].as_array_mut().unwrap().push(reclaim);
            }),
            "operation 1 (reclaim): mapping 0, but process 1 has 0 mappings",
        ),
        (
            edit(&|v| v["workload"]["maps"][0]["fixed"] = 0x0900_0001u64.into()),
            "MAP_FIXED address 0x9000001 is not page-aligned",
        ),
        (edit(&|v| v["workload"]["maps"][0]["fixed"] = 0x1000u64.into()), "outside the fixed range"),
    ];
    for (i, (v, says)) in cases.iter().enumerate() {
        let p = write(&d, &format!("bad{i}.json"), &v.to_string());
        assert_error_says(&vipt(&["replay", &p]), &format!("case {i}"), says);
    }
}

#[test]
fn shrink_of_a_clean_run_is_status_2_and_shrink_says_when_it_stops_at_its_budget() {
    let d = tmpdir("shrink");
    let mut v: serde_json::Value = serde_json::from_str(&small_reproducer()).unwrap();
    let small = write(&d, "small.json", &v.to_string());
    // On the correct lineage the same workload is clean.
    v["lineage"] = "linux-6.x".into();
    let clean = write(&d, "clean.json", &v.to_string());
    assert_eq!(vipt(&["replay", &clean]).status.code(), Some(0));
    assert_error_says(&vipt(&["shrink", &clean]), "shrink of a clean run", "nothing to shrink");
    assert!(!d.join("clean.min.json").exists());

    let s = vipt(&["shrink", &small, "--max-runs", "2", "-o", d.join("m.json").to_str().unwrap()]);
    assert_eq!(s.status.code(), Some(0), "{}", stderr(&s));
    let said = String::from_utf8_lossy(&s.stdout);
    assert!(said.starts_with("stopped at its budget of 2 runs (a smaller reproducer may exist)"), "{said}");
    // The committed reproducer is a shrink's own result: nothing more goes.
    let s = vipt(&["shrink", &small, "-o", d.join("m2.json").to_str().unwrap()]);
    let said = String::from_utf8_lossy(&s.stdout);
    assert!(said.starts_with("nothing could be removed ("), "{said}");
}

#[test]
fn messages_name_what_is_wrong_in_one_short_line() {
    let d = tmpdir("messages");
    assert_error_says(&vipt(&["replay"]), "missing FILE", "not provided: <FILE>");
    assert_error_says(&vipt(&["shrink"]), "missing FILE", "<FILE>");
    let long = "k".repeat(100_000);
    assert_error_says(
        &vipt(&["check", "--lineage", &long, "--seeds", "0"]),
        "long --lineage",
        "(100000 bytes)",
    );
    assert_error_says(&vipt(&["campaign", "--preset", &long]), "long --preset", "unknown preset");
    assert_error_says(&vipt(&[&long]), "long command", "unrecognized subcommand");
    let mut v: serde_json::Value = serde_json::from_str(&small_reproducer()).unwrap();
    v["lineage"] = "l".repeat(10_000_000).into();
    let p = write(&d, "long-lineage.json", &v.to_string());
    assert_error_says(&vipt_within(&["replay", &p], 60), "10 MB lineage", "unknown lineage `lll");
    let p = write(&d, "newline.json", &small_reproducer().replace("\"tiny\"", "\"ti\\nny\""));
    assert_error_says(&vipt(&["replay", &p]), "newline in a preset", "unknown preset `ti\\nny`");
    // A plot that cannot be written fails before anything is printed.
    let o = vipt(&["cost", "--preset", "tiny", "--plot", "/proc/vipt/plot.svg"]);
    assert_error_says(&o, "cost --plot", "--plot /proc/vipt/plot.svg");
    assert!(o.stdout.is_empty(), "the table was printed before the failure");
}

/// The campaign JSON carries, per lineage, every situation with its count, in report order;
/// `--situations` prints them as a table after the lineage table.
#[test]
fn campaign_reports_situations_in_report_order() {
    use vipt_emu::mm::situations::Situation;
    let d = tmpdir("situations");
    let out = d.to_str().unwrap();
    let o = vipt(&[
        "campaign",
        "--lineage",
        "linux-6.x",
        "--seeds",
        "0..30",
        "--jobs",
        "1",
        "--json",
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let sits = v["lineages"][0]["situations"].as_object().expect("a situations object");
    assert_eq!(sits.len(), Situation::ALL.len());
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let at: Vec<usize> =
        Situation::ALL.iter().map(|s| text.find(&format!("\"{}\"", s.name())).expect("every name")).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "names in report order");
    let n = |name: &str| sits[name].as_u64().unwrap();
    assert!(n("flush_dcache_page.unmapped") > 0 && n("access_process_vm.read_anon") > 0);
    let seeds = &v["lineages"][0]["situation_seeds"];
    assert!(seeds["flush_dcache_page.unmapped"].as_u64().unwrap() <= 30);
    let t = vipt(&[
        "campaign",
        "--lineage",
        "linux-6.x",
        "--seeds",
        "0..30",
        "--jobs",
        "1",
        "--situations",
        "--out",
        out,
    ]);
    assert_eq!(t.status.code(), Some(0), "{}", stderr(&t));
    let table = String::from_utf8(t.stdout).unwrap();
    let row =
        table.lines().find(|l| l.starts_with("flush_dcache_page.unmapped")).expect("a row per situation");
    assert!(row.contains(&format!("({})", n("flush_dcache_page.unmapped"))), "{row}");
}

/// Every reproducer the repository ships (the findings and the fuzz seed corpus) still replays
/// to the violation it records: status 1 and the `reproduced:` verdict.
#[test]
fn committed_reproducers_still_reproduce() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["docs/findings", "fuzz/corpus/reproducer"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 5, "the shipped reproducers are missing: {files:?}");
    for f in files {
        let o = vipt_within(&["replay", f.to_str().unwrap()], 120);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{}: {}", f.display(), stderr(&o));
        assert!(out.lines().any(|l| l.starts_with("reproduced:")), "{}: {out}", f.display());
    }
}

/// A run of the window scheduler is recorded as such, and its reproducer replays bit for bit.
#[test]
fn window_scheduler_runs_are_recorded_and_replay() {
    let d = tmpdir("window");
    let out = d.to_str().unwrap();
    let o =
        vipt(&["check", "--lineage", "linux-6.x", "--seeds", "23109", "--scheduler", "window", "--out", out]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let path = d.join("linux-6.x-seed23109.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"scheduler\": \"window\""), "{text:.300}");
    let r = vipt(&["replay", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(String::from_utf8_lossy(&r.stdout).lines().any(|l| l.starts_with("reproduced:")));
}

/// On the hash machine the fault path marks a PTE young or dirty with an atomic OR, as
/// PowerPC's `ptep_set_access_flags` does: a dirty bit `hash_page` sets between the fault's
/// read of the PTE and its update survives, so reclaim writes the page back. This seed of
/// `hash-cas` loses the final store when the update is a plain `set_pte_at` of the value read.
#[test]
fn hash_fault_path_keeps_a_dirty_bit_set_by_hash_page() {
    let out = tmpdir("hash-access-flags");
    let o = vipt_within(
        &["check", "--lineage", "hash-cas", "--seeds", "21114", "--out", out.to_str().unwrap()],
        120,
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn a_campaign_of_another_family_records_it_and_its_reproducers_replay_it() {
    let d = tmpdir("family");
    let out = d.to_str().unwrap();
    let c = vipt(&[
        "campaign",
        "--family",
        "sharing",
        "--lineage",
        "linux-2.6.14",
        "--seeds",
        "0..40",
        "--json",
        "--jobs",
        "1",
        "--out",
        out,
    ]);
    assert_eq!(c.status.code(), Some(0), "{}", stderr(&c));
    let v = json(&c);
    assert_eq!(v["run"]["family"], "sharing");
    let path = v["lineages"][0]["reproducer"].as_str().expect("a violation within 40 seeds").to_string();
    let text = std::fs::read_to_string(&path).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(recorded["family"], "sharing");
    let r = json(&vipt(&["replay", "--json", &path]));
    assert_eq!(r["reproduced"], true);
    let said = String::from_utf8_lossy(&vipt(&["replay", &path]).stdout).into_owned();
    assert!(said.starts_with("lineage linux-2.6.14 (sharing workload family) on tiny"), "{said}");
    // Without --family, the JSON has no family field, as before.
    let m = json(&vipt(&["check", "--lineage", "linux-6.x", "--seeds", "0", "--json", "--out", out]));
    assert!(m["run"].get("family").is_none(), "{m}");
    let p = write(&d, "gather.json", &text.replace("\"family\": \"sharing\"", "\"family\": \"gather\""));
    assert_error_says(&vipt(&["replay", &p]), "a family the lineage cannot run", "cannot run the gather");
    let p = write(&d, "nope.json", &text.replace("\"family\": \"sharing\"", "\"family\": \"nope\""));
    assert_error_says(&vipt(&["replay", &p]), "an unknown family", "unknown workload family `nope`");
    assert_error_says(
        &vipt(&["check", "--family", "sharing", "--lineage", "gather-range", "--seeds", "0", "--out", out]),
        "a lineage of another family",
        "lineage `gather-range` cannot run the sharing workload family: it runs gather",
    );
    assert_error_says(
        &vipt(&["compare", "linux-6.x", "hash-cas", "--family", "sharing", "--seeds", "0"]),
        "compare with a lineage of another family",
        "lineage `hash-cas` cannot run the sharing",
    );
    assert_error_says(&vipt(&["campaign", "--family", "shm"]), "unknown family", "known: mixed, gather");
    let input = d.join("fuzz-input");
    std::fs::write(&input, [7u8; 32]).unwrap();
    let input = input.to_str().unwrap();
    assert_error_says(
        &vipt(&["import-fuzz", input, "--lineage", "hash-cas", "--family", "sharing"]),
        "import-fuzz with a family the lineage cannot run",
        "lineage `hash-cas` cannot run the sharing",
    );
    // Without --lineage, the default lineages that can run the family.
    let all = json(&vipt(&["campaign", "--family", "sharing", "--seeds", "0", "--json", "--out", out]));
    let names: Vec<&str> =
        all["lineages"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"linux-6.x") && names.contains(&"pipt"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("gather-") || n.starts_with("hash-")), "{names:?}");
}

/// `--move-shared-anon` lifts the rule that keeps shared anonymous memory in place: the
/// campaign then meets the placement hazard, records the option, and says in its table, JSON
/// and account which violations met it.
#[test]
fn moving_shared_anonymous_memory_is_recorded_and_its_violations_are_told_apart() {
    let d = tmpdir("move-shared-anon");
    let out = d.to_str().unwrap();
    let args =
        ["campaign", "--lineage", "linux-6.x", "--family", "sharing", "--seeds", "340..345", "--out", out];
    let moved: Vec<&str> = args.iter().copied().chain(["--move-shared-anon"]).collect();
    let kept = json(&vipt(&[&args[..], &["--json"]].concat()));
    assert_eq!(kept["lineages"][0]["violations"], 0, "{kept}");
    assert!(kept["run"].get("move_shared_anon").is_none(), "{kept}");
    let j = json(&vipt(&[&moved[..], &["--json"]].concat()));
    let l = &j["lineages"][0];
    assert_eq!(j["run"]["move_shared_anon"], true, "{j}");
    assert!(l["violations_shared_anon_colours"].as_u64().unwrap() >= 1, "{l}");
    assert!(l["situation_seeds"]["shared_anon.colours"].as_u64().unwrap() >= 1, "{l}");
    let table = String::from_utf8_lossy(&vipt(&moved).stdout).into_owned();
    assert!(table.contains("mapped shared anonymous memory at two colours"), "{table}");
    let repro = std::path::Path::new(out).join("linux-6.x-seed342.json");
    let text = std::fs::read_to_string(&repro).unwrap();
    assert!(text.contains("\"move_shared_anon\": true"), "{text}");
    let replay = vipt(&["replay", repro.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&replay.stdout).contains("section 4"));
}
