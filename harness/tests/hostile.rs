//! Hostile input, as a property: valid reproducers mutated (bytes flipped, inserted or cut,
//! JSON fields replaced or removed, indices moved) and argument lists drawn from the options
//! and from bad values go to the `vipt` binary. Every run must end with status 0, 1, 2 or 3,
//! with exactly one line on stderr for 2, and never with a panic (status 101) or a signal.
//!
//! The number of cases per property is `VIPT_HOSTILE_TESTS` (default 24, a few seconds; CI
//! runs the default).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_vipt");

fn cases() -> u64 {
    std::env::var("VIPT_HOSTILE_TESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(24)
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("vipt-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The valid reproducers the mutations start from.
fn bases() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        "fuzz/corpus/reproducer/seed-valid-shrunk.json",
        "docs/findings/linux-6.x-racy-teardown.json",
        "docs/findings/linux-6.x-racy-poke.json",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(root.join(p)).unwrap())
    .collect()
}

/// Runs the binary; the verdict on how it ended.
fn judge(args: &[String], what: &str) -> TestResult {
    // In the scratch directory, so that whatever a relative path names lands there.
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(scratch())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vipt runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return TestResult::error(format!("{what}: still running after 120 s: {args:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let o: Output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let shown: String = err.chars().take(2000).collect();
    match o.status.code() {
        Some(2) if err.lines().count() == 1 && err.starts_with("vipt: ") && err.ends_with('\n') => {
            TestResult::passed()
        }
        Some(2) => {
            TestResult::error(format!("{what}: status 2 without exactly one line: {shown:?} ({args:?})"))
        }
        Some(0 | 1 | 3) if err.lines().all(|l| l.starts_with("vipt: warning: ")) => TestResult::passed(),
        Some(s @ (0 | 1 | 3)) => {
            TestResult::error(format!("{what}: status {s} with stderr {shown:?} ({args:?})"))
        }
        other => TestResult::error(format!("{what}: ended with {other:?}: {shown:?} ({args:?})")),
    }
}

// ----- mutated reproducers ------------------------------------------------------------------

/// One mutation: what it does and two numbers that say where and how.
#[derive(Clone, Debug)]
struct Mutation {
    kind: u8,
    at: u64,
    how: u64,
}

impl Arbitrary for Mutation {
    fn arbitrary(g: &mut Gen) -> Self {
        Mutation { kind: u8::arbitrary(g) % 7, at: u64::arbitrary(g), how: u64::arbitrary(g) }
    }
}

/// A reproducer case: which base, its mutations, and the command that reads it.
#[derive(Clone, Debug)]
struct ReproCase {
    base: u8,
    mutations: Vec<Mutation>,
    command: u8,
}

impl Arbitrary for ReproCase {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = 1 + usize::arbitrary(g) % 3;
        ReproCase {
            base: u8::arbitrary(g),
            mutations: (0..n).map(|_| Mutation::arbitrary(g)).collect(),
            command: u8::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let me = self.clone();
        Box::new(
            self.mutations
                .shrink()
                .filter(|m| !m.is_empty())
                .map(move |mutations| ReproCase { mutations, ..me.clone() }),
        )
    }
}

/// Values a mutated JSON field may take.
fn value(how: u64) -> Value {
    let long = "x".repeat(100_000);
    let all: Vec<Value> = vec![
        0.into(),
        1.into(),
        2.into(),
        3.into(),
        7.into(),
        9.into(),
        50.into(),
        255.into(),
        256.into(),
        511.into(),
        512.into(),
        1024.into(),
        65_535.into(),
        u32::MAX.into(),
        u64::MAX.into(),
        (-1).into(),
        1.5.into(),
        "".into(),
        "linux-6.x".into(),
        "whole-cache".into(),
        "pipt".into(),
        "rp3440".into(),
        "pa8700".into(),
        "init".into(),
        "child".into(),
        "store".into(),
        "fork".into(),
        long.into(),
        true.into(),
        Value::Null,
        Value::Array(vec![]),
        serde_json::json!({}),
        serde_json::json!({ "init": 9 }),
        serde_json::json!({ "child": 3 }),
    ];
    all[(how % all.len() as u64) as usize].clone()
}

/// Pointers (RFC 6901) to every node of `v` but the root.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

/// The keys that hold indices and counts.
const INDEX_KEYS: [&str; 14] = [
    "map",
    "proc",
    "page",
    "word",
    "file",
    "pgoff",
    "cpus",
    "procs",
    "pages",
    "init",
    "child",
    "fixed",
    "colour",
    "max_steps",
];

fn mutate(text: &str, m: &Mutation) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let at = |n: usize| (m.at % (n.max(1) as u64)) as usize;
    match m.kind {
        0 => {
            let i = at(bytes.len());
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1 << (m.how % 8);
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        1 => {
            bytes.truncate(at(bytes.len()));
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        2 => {
            let junk = [
                "{",
                "}",
                "[",
                "]",
                ",",
                "\"",
                "-1",
                "1e400",
                "null",
                "\u{0}",
                "99999999999999999999999",
                "\n",
            ];
            let i = at(bytes.len());
            let mut s = String::from_utf8_lossy(&bytes[..i]).into_owned();
            s.push_str(junk[(m.how % junk.len() as u64) as usize]);
            s.push_str(&String::from_utf8_lossy(&bytes[i..]));
            return s;
        }
        _ => {}
    }
    let Ok(mut v) = serde_json::from_str::<Value>(text) else { return text.to_string() };
    let mut ptrs = Vec::new();
    pointers(&v, String::new(), &mut ptrs);
    if m.kind == 5 {
        ptrs.retain(|p| INDEX_KEYS.iter().any(|k| p.ends_with(&format!("/{k}"))));
    }
    if ptrs.is_empty() {
        return text.to_string();
    }
    let p = ptrs[at(ptrs.len())].clone();
    let (parent, last) = p.rsplit_once('/').expect("a pointer below the root");
    match m.kind {
        3 => *v.pointer_mut(&p).unwrap() = value(m.how),
        4 => match v.pointer_mut(parent).unwrap() {
            Value::Object(o) => {
                o.remove(&last.replace("~1", "/").replace("~0", "~"));
            }
            Value::Array(a) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            _ => {}
        },
        5 => {
            let x = v.pointer_mut(&p).unwrap();
            let n = x.as_u64().unwrap_or(0);
            *x = match m.how % 4 {
                0 => (n + 1).into(),
                1 => n.saturating_sub(1).into(),
                2 => (n + 1 + m.how % 64).into(),
                _ => (m.how % 300).into(),
            };
        }
        _ => {
            // Duplicate the node in its array (a program more, an operation more).
            if let Value::Array(a) = v.pointer_mut(parent).unwrap() {
                let i = last.parse::<usize>().unwrap();
                let x = a[i].clone();
                a.insert(i, x);
            }
        }
    }
    if m.how.is_multiple_of(2) { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() }
}

fn mutated_reproducer(c: ReproCase) -> TestResult {
    let bases = bases();
    let mut text = bases[c.base as usize % bases.len()].clone();
    for m in &c.mutations {
        text = mutate(&text, m);
    }
    let d = scratch();
    let file = d.join(format!("case-{:016x}.json", fnv(text.as_bytes())));
    std::fs::write(&file, &text).unwrap();
    let f = file.to_str().unwrap().to_string();
    let out = d.join("shrunk.json").to_str().unwrap().to_string();
    let args: Vec<String> = match c.command % 5 {
        0 => vec!["replay".into(), f],
        1 => vec!["replay".into(), "--json".into(), f],
        2 => vec!["replay".into(), "--steps".into(), f],
        3 => vec!["shrink".into(), f, "--max-runs".into(), "4".into(), "-o".into(), out],
        _ => vec!["import-fuzz".into(), f, "--lineage".into(), "linux-6.x".into(), "-o".into(), out],
    };
    let r = judge(&args, "mutated reproducer");
    let _ = std::fs::remove_file(&file);
    r
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[test]
fn mutated_reproducers_end_with_a_documented_status() {
    QuickCheck::new().tests(cases()).quickcheck(mutated_reproducer as fn(ReproCase) -> TestResult);
}

// ----- argument lists -----------------------------------------------------------------------

/// An argument list: a command, then options of that command with values (each a pair of
/// indices into the option and value lists), and now and then a token from anywhere.
#[derive(Clone, Debug)]
struct ArgCase {
    command: u8,
    options: Vec<(u8, u8)>,
}

impl Arbitrary for ArgCase {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 6;
        ArgCase {
            command: u8::arbitrary(g),
            options: (0..n).map(|_| (u8::arbitrary(g), u8::arbitrary(g))).collect(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let command = self.command;
        Box::new(self.options.shrink().map(move |options| ArgCase { command, options }))
    }
}

const COMMANDS: [&str; 9] =
    ["campaign", "check", "replay", "shrink", "import-fuzz", "cost", "lineages", "frobnicate", "help"];

/// Each command's options, and the values an option may get (good and bad ones).
fn options(command: &str, d: &Path) -> Vec<(&'static str, Vec<String>)> {
    let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let p = |name: &str| d.join(name).to_string_lossy().into_owned();
    let reproducer = p("valid.json");
    let _ = std::fs::write(&reproducer, &bases()[0]);
    let files = {
        let mut f = v(&["/dev/zero", "/no/such/file", "/dev/null", "/proc/self/status"]);
        f.extend([reproducer.clone(), reproducer.clone(), reproducer.clone(), reproducer.clone()]);
        f
    };
    let outs = {
        let mut o = v(&["/dev/null", "/proc/vipt", "/dev/full"]);
        o.push(p("out"));
        o.push(p("out-dir/file.json"));
        o
    };
    let none = Vec::new();
    match command {
        "campaign" | "check" => vec![
            (
                "--lineage",
                v(&[
                    "linux-6.x",
                    "linux-2.4",
                    "whole-cache",
                    "pipt",
                    "gather-no-sync",
                    "no-such-lineage",
                    "",
                ]),
            ),
            (
                "--seeds",
                v(&[
                    "0..3",
                    "5..=7",
                    "18446744073709551615",
                    "18446744073709551613..",
                    "-1..2",
                    "3..1",
                    "x",
                    "",
                ]),
            ),
            ("--jobs", v(&["0", "1", "2", "100000", "-3", "many"])),
            ("--preset", v(&["tiny", "pa8700", "pa8800", "rp3440", "pipt", "vax"])),
            ("--scheduler", v(&["random", "pct", "fuzz", "none"])),
            ("--out", outs),
            ("--max-steps", v(&["0", "1", "100", "5000", "18446744073709551615", "-1"])),
            ("--json", none.clone()),
            ("--no-speculation", none.clone()),
            ("--racy-teardown", none.clone()),
            ("--racy-poke", none.clone()),
            ("--move-shared-anon", none.clone()),
        ],
        "replay" => vec![("", files), ("--json", none.clone()), ("--steps", none.clone())],
        "shrink" => vec![("", files), ("-o", outs), ("--max-runs", v(&["0", "1", "3", "x"]))],
        "import-fuzz" => vec![("", files), ("--lineage", v(&["linux-6.x", "pipt", "nope"])), ("-o", outs)],
        "cost" => vec![
            ("--preset", v(&["tiny", "pa8700", "pipt", "vax"])),
            ("--json", none.clone()),
            ("--plot", {
                let mut o = v(&["/proc/vipt/plot.svg", "/dev/full", "/dev/null"]);
                o.push(p("plot.svg"));
                o
            }),
        ],
        _ => vec![("--json", none.clone())],
    }
}

/// Tokens from anywhere: other commands' options, help, nonsense, a very long word.
fn strays() -> Vec<String> {
    let mut t: Vec<String> =
        ["--help", "--version", "--frob", "--", "-o", "--seeds", "x", "", "--json", "help"]
            .iter()
            .map(|x| x.to_string())
            .collect();
    t.push("k".repeat(100_000));
    t
}

fn argument_list(c: ArgCase) -> TestResult {
    let d = scratch();
    let command = COMMANDS[c.command as usize % COMMANDS.len()];
    let opts = options(command, &d);
    let strays = strays();
    let mut args = vec![command.to_string()];
    // The file of the commands that read one comes first (mostly the valid reproducer).
    if let Some((_, files)) = opts.iter().find(|(flag, _)| flag.is_empty()) {
        args.push(files[(c.command as usize / COMMANDS.len()) % files.len()].clone());
    }
    for &(o, x) in &c.options {
        if o % 8 == 7 {
            args.push(strays[x as usize % strays.len()].clone());
            continue;
        }
        let (flag, values) = &opts[o as usize % opts.len()];
        // Each option once (but --lineage, which may repeat); the file is already there.
        if flag.is_empty() || (*flag != "--lineage" && args.iter().any(|a| a == flag)) {
            continue;
        }
        args.push(flag.to_string());
        if !values.is_empty() {
            args.push(values[x as usize % values.len()].clone());
        }
    }
    // Keep runs short and in the scratch directory: a campaign gets a few seeds and the
    // scratch directory for its reproducers unless it names its own, and a shrink a few runs.
    if matches!(command, "campaign" | "check") && !args.iter().any(|a| a == "--seeds") {
        args.extend(["--seeds".into(), "0..3".into()]);
    }
    if matches!(command, "campaign" | "check") && !args.iter().any(|a| a == "--out") {
        args.extend(["--out".into(), d.join("campaign-out").to_string_lossy().into_owned()]);
    }
    if command == "campaign" && !args.iter().any(|a| a == "--lineage") {
        args.extend(["--lineage".into(), "linux-6.x".into()]);
    }
    if command == "shrink" && !args.iter().any(|a| a == "--max-runs") {
        args.extend(["--max-runs".into(), "3".into()]);
    }
    judge(&args, "argument list")
}

#[test]
fn argument_lists_end_with_a_documented_status() {
    QuickCheck::new().tests(cases()).quickcheck(argument_list as fn(ArgCase) -> TestResult);
}
