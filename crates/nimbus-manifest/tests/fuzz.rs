//! The manifest fuzzer: a deterministic mutation loop over a corpus of manifests, through every
//! stage `nimbus validate` runs (bytes → text → YAML → templates → decoding → validation →
//! app graph → each provider's check and required settings → rendered report).
//!
//! The corpus is `tests/fuzz-corpus/` (template bombs, a byte-order mark, Latin-1, UTF-16, CR
//! and CRLF line endings, every setting), the UI cases and the examples. Each execution takes
//! one corpus file and applies 1–8 mutations: byte and line edits, YAML tokens, template
//! constructs (loops, `*`, `set`, filters that grow text), encodings (a BOM, bytes that are not
//! UTF-8, CR line endings) and splices from another file.
//!
//! A panic is a finding: the input is written to `target/fuzz-findings/` and the test fails,
//! listing them. An abort (out of memory) kills the test. A hang stops it; the slowest
//! execution is printed (and kept as `target/fuzz-findings/slowest.yaml`) so that a slow one is
//! seen before it becomes a hang.
//!
//! Budget: `NIMBUS_FUZZ_EXECS` executions (default 1500), or with `NIMBUS_FUZZ_SECONDS` as many
//! as fit in that time (`scripts/test` gives it 60 s). `NIMBUS_FUZZ_SEED` picks another
//! sequence; the same seed and count replay the same inputs.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nimbus_manifest::{LoadOptions, check_bytes};
use nimbus_provider::{ProviderId, Purpose, compile_checked};

/// Tokens beyond the shared YAML ones: settings, and template constructs from `{%` on (the
/// mutation that writes a quoted template value picks from there).
const EXTRA_TOKENS: &[&str] = &[
    "900s",
    "handler: app.py:handler",
    "providers:",
    "  gcp: { project: p }",
    "description: ",
    "{%",
    "%}",
    "{{ env.HOME }}",
    "{{ stage }}",
    "{% for a in range(100000) %}",
    "{% endfor %}",
    "{% if stage == 'prod' %}",
    "{% endif %}",
    "{% else %}",
    "{{ 'x' * 90000 }}",
    " * ",
    "{% set s = 'ab' %}",
    "{{ s ~ s }}",
    "{{ namespace() }}",
    "recursive",
    "{{ loop([1]) }}",
    "|join('xxxxxxxxxxxxxxxx')",
    "|replace('', 'xxxxxxxxxxxxxxxxxxxxxxxx')",
    "|list|string",
    "|upper",
    "|default('x')",
    "range(100000)",
    "{{ range(100000)|join(vars.w) }}",
    "{{ debug() }}",
    "{% raw %}",
    "{% endraw %}",
    "{% macro m() %}",
    "{% include 'x' %}",
    "\u{feff}",
];

/// Every token a mutation inserts.
fn tokens() -> Vec<&'static str> {
    common::YAML_TOKENS
        .iter()
        .chain(EXTRA_TOKENS)
        .copied()
        .collect()
}

/// Bytes that are not UTF-8 on their own, or change how lines end.
const BYTES: &[&[u8]] = &[
    b"\xFF",
    b"\xFE",
    b"\xC3",
    b"\xE2\x82",
    b"\xF0\x9F\x98",
    b"\x80",
    b"\r",
    b"\r\n",
    b"\xEF\xBB\xBF",
    b"\xFF\xFE",
    b"\x00",
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["tests/fuzz-corpus", "tests/ui/valid", "tests/ui/invalid"] {
        let dir = root.join(dir);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        files.extend(
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml")),
        );
    }
    for example in ["shop", "hello-http"] {
        files.push(
            root.join("../../examples")
                .join(example)
                .join("nimbus.yaml"),
        );
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[(String, Vec<u8>)]) {
    let at = rng.below(input.len() + 1);
    match rng.below(10) {
        0 => {
            let end = (at + 1 + rng.below(16)).min(input.len());
            input.drain(at.min(end)..end);
        }
        1 | 2 => {
            let tokens = tokens();
            let t = tokens[rng.below(tokens.len())].as_bytes();
            input.splice(at..at, t.iter().copied());
        }
        3 => {
            let b = BYTES[rng.below(BYTES.len())];
            input.splice(at..at, b.iter().copied());
        }
        4 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        5 => {
            // Swap or duplicate a line.
            let mut lines: Vec<Vec<u8>> =
                input.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let n = lines.len();
            let (a, b) = (rng.below(n), rng.below(n));
            if rng.below(2) == 0 {
                lines.swap(a, b);
            } else {
                let line = lines[a].clone();
                lines.insert(b, line);
            }
            *input = lines.join(&b'\n');
        }
        6 => {
            // Splice lines from another file.
            let (_, other) = &corpus[rng.below(corpus.len())];
            let start = rng.below(other.len() + 1);
            let end = (start + rng.below(200)).min(other.len());
            input.splice(at..at, other[start..end].iter().copied());
        }
        7 => {
            // Old Mac or Windows line endings throughout.
            let to: &[u8] = if rng.below(2) == 0 { b"\r" } else { b"\r\n" };
            let mut out = Vec::with_capacity(input.len() + input.len() / 16);
            for &b in input.iter() {
                if b == b'\n' {
                    out.extend_from_slice(to);
                } else {
                    out.push(b);
                }
            }
            *input = out;
        }
        8 => {
            // A template construct inside a quoted value.
            let first = EXTRA_TOKENS
                .iter()
                .position(|t| *t == "{%")
                .expect("listed");
            let t = EXTRA_TOKENS[first + rng.below(EXTRA_TOKENS.len() - first)];
            let value = format!("\"{t}\"");
            input.splice(at..at, value.bytes());
        }
        _ => {
            if !input.starts_with(b"\xEF\xBB\xBF") {
                input.splice(0..0, b"\xEF\xBB\xBF".iter().copied());
            }
        }
    }
}

/// One execution: everything `validate` does, for every provider, deploy and export alike.
fn execute(input: &[u8]) {
    let options = LoadOptions {
        check_files: false,
        env: [("HOME".to_string(), "/home/u".to_string())].into(),
        ..LoadOptions::default()
    };
    let checked = check_bytes(Path::new("nimbus.yaml"), input.to_vec(), &options);
    let _ = checked.report.render(false);
    let env = |name: &str| (name == "GOOGLE_CLOUD_PROJECT").then(|| "from-env".to_string());
    for (i, provider) in ProviderId::ALL.into_iter().enumerate() {
        let purpose = if i % 2 == 0 {
            Purpose::Deploy
        } else {
            Purpose::Export
        };
        match compile_checked(checked.clone(), provider, purpose, &env) {
            Ok(compiled) => {
                let _ = compiled.graph.to_json();
            }
            Err(report) => {
                assert!(
                    report.error_count() > 0,
                    "an invalid manifest must carry an error"
                );
                let _ = report.render(true);
            }
        }
    }
}

#[test]
fn fuzzed_manifests_never_panic_hang_or_abort() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 20,
        "the corpus is too small: {}",
        corpus.len()
    );
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seconds = number("NIMBUS_FUZZ_SECONDS");
    let execs =
        number("NIMBUS_FUZZ_EXECS").unwrap_or(if seconds.is_some() { u64::MAX } else { 1500 });
    let mut rng = Rng(number("NIMBUS_FUZZ_SEED").unwrap_or(0x6e69_6d62_7573) | 1);
    let started = Instant::now();
    let deadline = seconds.map(|s| started + Duration::from_secs(s));
    let findings_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings");
    let mut findings = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let mut slowest_input = Vec::new();
    let mut done = 0u64;
    // The corpus itself first, unchanged.
    let mut queue: Vec<(String, Vec<u8>)> = corpus.clone();
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while done < execs && deadline.is_none_or(|d| Instant::now() < d) {
        let (name, input) = queue.pop().unwrap_or_else(|| {
            let (name, base) = &corpus[rng.below(corpus.len())];
            let mut input = base.clone();
            for _ in 0..1 + rng.below(8) {
                mutate(&mut rng, &mut input, &corpus);
            }
            (format!("{name}~{done}"), input)
        });
        let one = Instant::now();
        let outcome = std::panic::catch_unwind(|| execute(&input));
        let took = one.elapsed();
        if took > slowest.0 {
            slowest = (took, name.clone());
            slowest_input.clone_from(&input);
        }
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            std::fs::create_dir_all(&findings_dir).unwrap();
            let file = findings_dir.join(format!("finding-{done}.yaml"));
            std::fs::write(&file, &input).unwrap();
            findings.push(format!("{} (from {name}): {message}", file.display()));
        }
        done += 1;
    }
    std::panic::set_hook(previous_hook);
    // Kept to look at: the slowest input is where a hang would start.
    if std::fs::create_dir_all(&findings_dir).is_ok() {
        let _ = std::fs::write(findings_dir.join("slowest.yaml"), &slowest_input);
    }
    eprintln!(
        "manifest fuzzer: {done} executions in {:.1?} ({} corpus files), {} findings; slowest {:.1?} ({})",
        started.elapsed(),
        corpus.len(),
        findings.len(),
        slowest.0,
        slowest.1
    );
    assert!(
        findings.is_empty(),
        "the fuzzer found:\n{}",
        findings.join("\n")
    );
}
