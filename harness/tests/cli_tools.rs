//! The `vipt` commands that compare, split and draw: `compare`, `campaign --shard` with
//! `merge`, `replay --lineage`, `replay --html`, and the help of `check`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vipt");

fn vipt(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("vipt runs")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vipt-tools-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Status 2 and one line on stderr that says `needle`.
fn assert_error_says(o: &Output, what: &str, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{what}: status {:?}, stderr {}", o.status, stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: stderr is not one line: {err:?}");
    assert!(err.starts_with("vipt: ") && err.contains(needle), "{what}: {err:?} does not say {needle:?}");
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(o)))
}

/// `v` without its wall-clock fields.
fn without_seconds(mut v: serde_json::Value) -> serde_json::Value {
    for l in v["lineages"].as_array_mut().unwrap() {
        let l = l.as_object_mut().unwrap();
        l.remove("seconds");
        l.remove("seconds_to_first");
    }
    v
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

#[test]
fn three_shards_merged_are_the_unsharded_campaign() {
    let d = tmpdir("shards");
    let out = d.join("out");
    let common = |extra: &[&str]| {
        let mut a = vec![
            "campaign",
            "--lineage",
            "linux-2.6.14",
            "--lineage",
            "gather-first-page",
            "--lineage",
            "pipt",
            "--seeds",
            "30..150",
            "--json",
            "--situations",
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        vipt(&a)
    };
    let whole = common(&[]);
    assert_eq!(whole.status.code(), Some(0), "{}", stderr(&whole));
    let mut files = Vec::new();
    let mut seen = Vec::new();
    for k in [2, 0, 1] {
        let sh = format!("{k}/3");
        let o = common(&["--shard", &sh]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["shard"]["index"], k);
        seen.push(v["shard"]["seeds"].as_str().unwrap().to_string());
        let f = d.join(format!("shard{k}.json"));
        std::fs::write(&f, &o.stdout).unwrap();
        files.push(f.to_str().unwrap().to_string());
    }
    seen.sort();
    let mut want = ["30..=69", "70..=109", "110..=149"].map(String::from).to_vec();
    want.sort();
    assert_eq!(seen, want);
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let merged = vipt(&args);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let (w, m) = (json(&whole), json(&merged));
    assert!(w.get("shard").is_none() && m.get("shard").is_none());
    assert_eq!(without_seconds(m), without_seconds(w.clone()));
    // The campaign does find something in this range, so the merge had first seeds to pick.
    assert!(w["lineages"][0]["first_violation_seed"].is_u64(), "{w}");

    // Not every shard, one twice, or shards of another campaign: status 2.
    assert_error_says(&vipt(&["merge", &files[0], &files[1]]), "a missing shard", "is missing");
    assert_error_says(&vipt(&["merge", &files[0], &files[0], &files[1]]), "a shard twice", "given twice");
    let other = common(&["--shard", "0/2"]);
    let f = d.join("other.json");
    std::fs::write(&f, &other.stdout).unwrap();
    assert_error_says(&vipt(&["merge", &files[0], f.to_str().unwrap()]), "other N", "parts");
    let junk = d.join("junk.json");
    std::fs::write(&junk, "{\"lineages\": 3}").unwrap();
    assert_error_says(&vipt(&["merge", junk.to_str().unwrap()]), "not a campaign", "not the JSON of");
    assert_error_says(&vipt(&["merge", "/no/such/file"]), "missing file", "/no/such/file");
    assert_eq!(vipt(&["merge"]).status.code(), Some(2));
}

#[test]
fn bad_shards_are_status_2() {
    for bad in ["3/3", "0/0", "1", "a/3", "-1/3", "1/3/4"] {
        assert_error_says(&vipt(&["campaign", "--seeds", "0..10", "--shard", bad]), bad, "shard");
    }
    assert_error_says(
        &vipt(&["campaign", "--seeds", "0..2", "--shard", "0/3"]),
        "too few seeds",
        "fewer than 3 parts",
    );
}

#[test]
fn compare_lists_the_seeds_that_fail_on_one_side_only() {
    let o = vipt(&["compare", "linux-2.6.14", "linux-6.x", "--seeds", "30..50", "--json", "--jobs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let only_a = v["only_a"].as_array().unwrap();
    // Seed 36 is 2.6.14's first failing seed of the default range; the current code fixes it.
    assert!(only_a.iter().any(|f| f["seed"] == 36 && f["class"].as_str().unwrap().contains(':')), "{v}");
    assert_eq!(v["only_b"].as_array().unwrap().len(), 0);
    assert_eq!(v["scenarios"], 20);
    let table = vipt(&["compare", "linux-2.6.14", "linux-6.x", "--seeds", "30..50"]);
    let text = stdout(&table);
    assert!(text.contains("fail on linux-2.6.14 and not on linux-6.x:"), "{text}");
    assert!(text.contains(" 36"), "{text}");
    assert!(text.contains("vipt check --lineage linux-2.6.14 --seeds"), "{text}");
    assert_error_says(&vipt(&["compare", "linux-2.6.14", "nope"]), "unknown B", "unknown lineage");
    assert_error_says(&vipt(&["compare", "linux-2.6.14"]), "no B", "required");
    assert_error_says(&vipt(&["compare", "pipt", "pipt", "--jobs", "0"]), "no jobs", "--jobs");
}

#[test]
fn replay_on_another_lineage_runs_the_same_workload_there() {
    let f = repo("docs/findings/linux-6.x-racy-teardown.json");
    let f = f.to_str().unwrap();
    let own = vipt(&["replay", f]);
    assert_eq!(own.status.code(), Some(1), "{}", stderr(&own));
    let there = vipt(&["replay", f, "--lineage", "whole-cache"]);
    assert_eq!(there.status.code(), Some(0), "{}", stderr(&there));
    let text = stdout(&there);
    assert!(text.contains("lineage whole-cache on"), "{text}");
    assert!(text.contains("clean on whole-cache"), "{text}");
    let j = json(&vipt(&["replay", f, "--lineage", "whole-cache", "--json"]));
    assert_eq!((j["lineage"].as_str(), j["recorded_on"].as_str()), (Some("whole-cache"), Some("linux-6.x")));
    assert_error_says(&vipt(&["replay", f, "--lineage", "nope"]), "unknown lineage", "unknown lineage");
}

#[test]
fn check_requires_a_lineage_and_a_pinned_machine_warns_about_preset() {
    let help = stdout(&vipt(&["check", "--help"]));
    assert!(help.contains("--lineage <NAME>") && help.contains("required"), "{help}");
    assert!(!help.contains("default: every lineage"), "{help}");
    assert_error_says(&vipt(&["check", "--seeds", "0..5"]), "no lineage", "--lineage");
    let d = tmpdir("preset");
    let o = vipt(&[
        "campaign",
        "--lineage",
        "hash-cas",
        "--preset",
        "pa8700",
        "--seeds",
        "0..3",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("--preset pa8700 is ignored") && stderr(&o).contains("hash-cas runs on pipt")
    );
    let quiet = vipt(&["campaign", "--lineage", "hash-cas", "--seeds", "0..3", "--out", d.to_str().unwrap()]);
    assert_eq!(stderr(&quiet), "", "no --preset, no warning");
}

/// `deploy/`: the Kubernetes Indexed Job maps its completion index to `--shard`, the Slurm
/// array its task id; both commands, run as the engines would run them (on a small range),
/// give the JSON of their shard.
#[test]
fn the_deploy_manifests_run_their_shard() {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let job: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("deploy/k8s-indexed-job.json")).unwrap()).unwrap();
    assert_eq!((job["apiVersion"].as_str(), job["kind"].as_str()), (Some("batch/v1"), Some("Job")));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["command"], serde_json::json!(["/bin/sh", "-c"]));
    let script = c["args"][0].as_str().unwrap();
    assert!(script.contains(&format!("--shard \"$JOB_COMPLETION_INDEX/{n}\"")), "{script}");
    let d = tmpdir("deploy");
    let small =
        script.replace("--seeds 0..1000000", "--seeds 0..64").replace("/tmp/vipt-out", d.to_str().unwrap());
    assert_ne!(small, script, "the manifest's seed range changed: update this test");
    let o = Command::new("/bin/sh")
        .args(["-c", &small])
        .env("PATH", &path)
        .env("JOB_COMPLETION_INDEX", (n - 1).to_string())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!((v["shard"]["index"].as_u64(), v["shard"]["count"].as_u64()), (Some(n - 1), Some(n)));

    let slurm = std::fs::read_to_string(repo("deploy/slurm-array.sh")).unwrap();
    assert!(slurm.contains(&format!("#SBATCH --array=0-{}", n - 1)), "{slurm}");
    let o = Command::new("bash")
        .arg(repo("deploy/slurm-array.sh"))
        .current_dir(&d)
        .env("PATH", &path)
        .env("VIPT_SEEDS", "0..64")
        .env("SLURM_ARRAY_TASK_ID", "2")
        .env("SLURM_ARRAY_TASK_COUNT", n.to_string())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("shard-2.json")).unwrap()).unwrap();
    assert_eq!(v["shard"]["index"], 2);
    assert_eq!(v["seeds"], "0..=63");
}

/// `replay --html`: a well-formed, self-contained XHTML page with one SVG, exactly one element
/// (with a hover title) per drawn event, operations, routines and the violating read.
#[test]
fn the_drawing_is_one_well_formed_page_with_one_element_per_event() {
    use vipt_harness::html::drawn_events;
    use vipt_harness::repro::Reproducer;
    let reg = vipt_tmpalias::Registry::builtin();
    let d = tmpdir("html");
    for name in ["linux-6.x-racy-teardown.json", "linux-6.x-aging-dirty.json"] {
        let f = repo(&format!("docs/findings/{name}"));
        let out = d.join(format!("{name}.html"));
        let o = vipt(&["replay", f.to_str().unwrap(), "--html", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("in kernel terms:") && stdout(&o).contains("notation:"),
            "{}",
            stdout(&o)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        let doc = roxmltree::Document::parse_with_options(
            &text,
            roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
        )
        .unwrap_or_else(|e| panic!("{name}: not well-formed: {e}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "html");
        let all: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.is_element()).collect();
        assert_eq!(all.iter().filter(|n| n.tag_name().name() == "svg").count(), 1);
        // Offline: no script, no link, no reference to anything outside the page.
        assert!(all.iter().all(|n| !matches!(n.tag_name().name(), "script" | "link" | "img" | "iframe")));
        assert!(all.iter().all(|n| n.attribute("href").is_none() && n.attribute("src").is_none()));
        let class =
            |n: &roxmltree::Node, c: &str| n.attribute("class").is_some_and(|a| a.split(' ').any(|x| x == c));
        let events: Vec<&roxmltree::Node> = all.iter().filter(|n| class(n, "ev")).collect();
        let r = Reproducer::load(&f, &reg).unwrap();
        let l = reg.get(&r.lineage).unwrap();
        let run = r.replay(l, true);
        let line_bytes = l.preset.unwrap_or(r.preset.parse().unwrap()).config().line_bytes;
        let want = drawn_events(&run, line_bytes);
        assert!(!want.is_empty(), "{name}: nothing drawn");
        assert_eq!(events.len(), want.len(), "{name}: one element per event");
        for (n, e) in events.iter().zip(&want) {
            let title =
                n.children().find(|c| c.tag_name().name() == "title").and_then(|t| t.text()).unwrap_or("");
            assert!(title.starts_with(&format!("step {} cpu{}:", e.step, e.cpu.0)), "{name}: {title:?}");
        }
        assert_eq!(all.iter().filter(|n| class(n, "violation")).count(), 1);
        assert!(all.iter().any(|n| class(n, "op")) && all.iter().any(|n| class(n, "routine")));
    }
    let f = repo("docs/findings/linux-6.x-racy-teardown.json");
    assert_error_says(&vipt(&["replay", f.to_str().unwrap(), "--html", "/"]), "a directory", "--html");
}

/// The routine records of a traced run are balanced per CPU and nest; tracing changes
/// nothing of the run; an untraced run keeps no trace.
#[test]
fn routine_records_nest_and_tracing_changes_nothing() {
    use vipt_emu::trace::What;
    use vipt_harness::repro::Reproducer;
    let reg = vipt_tmpalias::Registry::builtin();
    let f = repo("docs/findings/linux-6.x-aging-dirty.json");
    let r = Reproducer::load(&f, &reg).unwrap();
    let l = reg.get(&r.lineage).unwrap();
    let traced = r.replay(l, true);
    let plain = r.replay(l, false);
    assert!(plain.trace.is_none());
    assert_eq!((traced.steps, traced.fingerprint()), (plain.steps, plain.fingerprint()));
    let mut open: Vec<Vec<&str>> = vec![Vec::new(); 8];
    let mut begun = 0;
    for e in &traced.trace.as_ref().unwrap().events {
        if let What::Routine { name, begin } = e.what {
            let stack = &mut open[e.cpu.index()];
            if begin {
                begun += 1;
                stack.push(name);
            } else {
                assert_eq!(stack.pop(), Some(name), "step {}: {name} ends out of order", e.step);
            }
        }
    }
    assert!(begun > 10, "{begun} routines");
    assert!(open.iter().all(Vec::is_empty), "unfinished routines: {open:?}");
}
