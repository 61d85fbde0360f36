//! Property tests: no input may panic the parser, templating, validator or renderer.
//! Inputs are random text and real manifests mutated at random (deleted ranges, inserted YAML
//! tokens, swapped and duplicated lines). Each must end in `Ok` or a rendered `Err`.

mod common;

use std::path::Path;

use nimbus_manifest::{LoadError, LoadOptions, load_str};
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../../../examples/shop/nimbus.yaml"),
    include_str!("../../../examples/hello-http/nimbus.yaml"),
    "version: 1\nservice: s\nvars: { a: 256 }\nstages: { prod: { vars: { a: 512 }, defaults: { memory: 512 } } }\nresources:\n  q: { type: queue, visibility_timeout: 60s, dead_letter: { max_receives: 3 } }\n  t: { type: table, key: { id: string }, sort_key: { at: number } }\nfunctions:\n  f:\n    handler: a/b.py:handler\n    memory: \"{{ vars.a }}\"\n    env: { X: \"{{ env.HOME | default('h') }}\" }\n    triggers:\n      - queue: { name: q, batch_size: 5 }\n      - schedule: { expression: \"cron(*/5 1-5 * JAN-MAR MON-FRI)\", timezone: Europe/Paris }\n      - table: t\n      - http: { method: GET, path: \"/x/{id}/{rest+}\", auth: { jwt: { issuer: i, audience: a } } }\n    uses: [ { resource: t, access: read_write } ]\n",
];

use common::YAML_TOKENS as TOKENS;

fn run(text: &str) {
    let options = LoadOptions {
        check_files: false,
        ..LoadOptions::default()
    };
    match load_str(Path::new("nimbus.yaml"), text.to_string(), &options) {
        Ok(loaded) => {
            let _ = loaded.warning_report().render(true);
        }
        Err(LoadError::Invalid(report)) => {
            assert!(
                report.error_count() > 0,
                "an invalid manifest must carry an error"
            );
            let _ = report.render(false);
            let _ = report.render(true);
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    SwapLines { a: usize, b: usize },
    DuplicateLine { line: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut i = at % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    match *m {
        Mutation::Delete { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, (start + len).min(text.len()));
            format!("{}{}", &text[..start], &text[end.max(start)..])
        }
        Mutation::Insert { at, token } => {
            let i = boundary(text, at);
            format!("{}{}{}", &text[..i], TOKENS[token], &text[i..])
        }
        Mutation::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let n = lines.len();
                lines.swap(a % n, b % n);
            }
            lines.join("\n")
        }
        Mutation::DuplicateLine { line } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = line % lines.len();
                lines.insert(i, lines[i]);
            }
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        run(&text);
    }

    #[test]
    fn value_parsers_never_panic(text in "\\PC{0,40}") {
        use nimbus_manifest::{Duration, EnvName, Handler, Name, RoutePath};
        let _ = text.parse::<Name>();
        let _ = text.parse::<Duration>();
        let _ = text.parse::<Handler>();
        let _ = text.parse::<RoutePath>();
        let _ = text.parse::<EnvName>();
    }

    #[test]
    fn yaml_shaped_text_never_panics(parts in prop::collection::vec(0..TOKENS.len(), 0..40)) {
        let text: String = parts.iter().map(|i| TOKENS[*i]).collect();
        run(&text);
    }

    #[test]
    fn mutated_manifests_never_panic(seed in 0..SEEDS.len(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut text = SEEDS[seed].to_string();
        for m in &mutations {
            text = apply(&text, m);
        }
        run(&text);
    }
}

#[test]
fn seeds_are_valid_before_mutation() {
    // Guards the property above: mutations start from manifests that do load.
    for seed in SEEDS {
        let options = LoadOptions {
            check_files: false,
            ..LoadOptions::default()
        };
        if let Err(LoadError::Invalid(r)) =
            load_str(Path::new("nimbus.yaml"), seed.to_string(), &options)
        {
            panic!("{}", r.render(false));
        }
    }
}
