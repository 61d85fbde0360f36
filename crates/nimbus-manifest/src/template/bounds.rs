//! Bounded templates: what a manifest template may do, and how much work and output it may take.
//!
//! A manifest is read by every command, often in CI on files from a pull request, so rendering
//! must end quickly and in little memory whatever the text says. Three bounds hold together:
//!
//! - **Work**: minijinja's fuel. Every instruction costs fuel; a template gets
//!   [`FUEL_PER_VALUE`], and all the templates of one manifest together [`FUEL_PER_MANIFEST`].
//!   Loops (`{% for %}` over `range(100000)` twice) stop there.
//! - **Output**: rendering writes into a capped buffer: [`MAX_VALUE_BYTES`] per value,
//!   [`MAX_MANIFEST_BYTES`] for all values of a manifest. Writing past it stops the render.
//! - **Growth inside one step**: an instruction must not build a huge value before fuel or the
//!   output cap can see it. So the language is cut down to what manifests need, checked on
//!   minijinja's own token stream before rendering ([`check`]): no `*` (it repeats strings and
//!   lists: `'x' * 90000`, `[s] * n`), no statements but `if` and `for` (no `set`, so no value
//!   can feed on itself), no recursive loops, no `namespace()`. The filters are a fixed list
//!   ([`FILTERS`]), each run through a guard that refuses inputs or results over
//!   [`MAX_FILTER_BYTES`] and, for `replace` and `join`, estimates the result before building it.
//!   What is left (`~`, `+`, attribute access, comparisons) can only add sizes together, so one
//!   expression is bounded by its own length times the largest input.
//!
//! The tokenizer is minijinja's (`unstable_machinery`), so the check sees exactly the tokens the
//! parser does; the Cargo.lock pins the version.

use std::cell::Cell;
use std::io;
use std::ops::Range;
use std::sync::OnceLock;

use minijinja::machinery::{Token, WhitespaceConfig, tokenize};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

/// Fuel (minijinja instructions) one templated value may use.
pub(crate) const FUEL_PER_VALUE: u64 = 20_000;
/// Fuel all the templates of one manifest may use together.
pub(crate) const FUEL_PER_MANIFEST: u64 = 200_000;
/// Largest rendered value, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Largest total of all rendered values of one manifest, in bytes.
pub(crate) const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Largest value a filter takes or gives, in bytes (lists and maps count their items).
pub(crate) const MAX_FILTER_BYTES: usize = 64 * 1024;

/// The statements a manifest template may use.
const STATEMENTS: &[&str] = &["if", "elif", "else", "endif", "for", "endfor"];

/// The filters a manifest template may use (each one guarded).
pub(crate) const FILTERS: &[&str] = &[
    "abs", "bool", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "int",
    "items", "join", "last", "length", "lines", "list", "lower", "max", "min", "replace",
    "reverse", "round", "safe", "sort", "split", "string", "title", "trim", "unique", "upper",
];

/// minijinja's global functions that manifest templates do not get: `namespace()` is a value
/// that loops can write to (so it could feed on itself), `debug()` prints the whole context.
/// `range` (at most 100000 items) and `dict` stay.
const REMOVED_FUNCTIONS: &[&str] = &["namespace", "debug"];

/// What one manifest's templates have left to spend.
#[derive(Debug)]
pub(crate) struct Budget {
    fuel: Cell<u64>,
    bytes: Cell<usize>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            fuel: Cell::new(FUEL_PER_MANIFEST),
            bytes: Cell::new(MAX_MANIFEST_BYTES),
        }
    }
}

/// Why a template was stopped or refused.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A construct manifests do not allow, at a byte range of the template text.
    Construct {
        range: Range<usize>,
        message: String,
        hint: String,
    },
    /// A limit was hit while rendering.
    Limit {
        error: Error,
        message: String,
        hint: String,
    },
    /// Any other template error.
    Template(Error),
}

/// Checks the template's tokens against what manifests allow (see the module docs).
pub(crate) fn check(text: &str) -> Result<(), Refusal> {
    let mut after_block_start = false;
    let mut in_block = false;
    for token in tokenize(text, false, SyntaxConfig, WhitespaceConfig::default()) {
        // Syntax errors are reported by the parser, with its own message.
        let Ok((token, span)) = token else {
            return Ok(());
        };
        let range = span.start_offset as usize..span.end_offset as usize;
        let refuse = |message: String, hint: &str| {
            Err(Refusal::Construct {
                range: range.clone(),
                message,
                hint: hint.to_string(),
            })
        };
        match token {
            Token::BlockStart => {
                after_block_start = true;
                in_block = true;
                continue;
            }
            Token::BlockEnd => in_block = false,
            Token::Ident(word) if after_block_start && !STATEMENTS.contains(&word) => {
                return refuse(
                    format!("`{{% {word} %}}` is not available in manifest templates"),
                    "manifest templates can use `{% if %}` and `{% for %}`; compute other values in `vars`",
                );
            }
            Token::Ident("recursive") if in_block => {
                return refuse(
                    "recursive loops are not available in manifest templates".into(),
                    "write the loop without `recursive`",
                );
            }
            Token::Mul => {
                return refuse(
                    "`*` is not available in manifest templates".into(),
                    "it repeats strings and lists without bound; write the value out, or put the number in `vars`",
                );
            }
            _ => {}
        }
        after_block_start = false;
    }
    Ok(())
}

/// The environment manifest templates render in: strict, fuelled, with the guarded filters.
pub(crate) fn environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for name in builtin_filters() {
        env.remove_filter(&name);
    }
    for name in FILTERS {
        env.add_filter(*name, guarded(name));
    }
    for name in REMOVED_FUNCTIONS {
        env.remove_global(name);
    }
    env
}

/// Renders `text`, spending from `budget`.
pub(crate) fn render(
    env: &mut Environment<'_>,
    text: &str,
    ctx: &Value,
    budget: &Budget,
) -> Result<String, Refusal> {
    check(text)?;
    let fuel = budget.fuel.get().min(FUEL_PER_VALUE);
    env.set_fuel(Some(fuel));
    let cap = budget.bytes.get().min(MAX_VALUE_BYTES);
    let template = env.template_from_str(text).map_err(Refusal::Template)?;
    let mut out = Capped {
        buf: Vec::new(),
        cap,
        hit: false,
    };
    let result = template.render_captured_to(ctx, &mut out);
    match result {
        Ok(captured) => {
            let used = captured
                .state()
                .fuel_levels()
                .map(|(used, _)| used)
                .unwrap_or(0);
            budget.fuel.set(budget.fuel.get().saturating_sub(used));
            budget
                .bytes
                .set(budget.bytes.get().saturating_sub(out.buf.len()));
            String::from_utf8(out.buf).map_err(|_| {
                Refusal::Template(Error::new(
                    ErrorKind::WriteFailure,
                    "the template rendered invalid UTF-8",
                ))
            })
        }
        Err(error) => {
            // A render that ran out of fuel is charged all it was given. Other errors (an
            // undefined name, most often) are not charged: minijinja does not say how far they
            // got, and charging them all would turn the eleventh typo into a fuel error.
            if error.kind() == ErrorKind::OutOfFuel {
                budget.fuel.set(budget.fuel.get().saturating_sub(fuel));
            }
            budget
                .bytes
                .set(budget.bytes.get().saturating_sub(out.buf.len()));
            Err(refusal(error, fuel, cap, out.hit))
        }
    }
}

/// What a failed render means: a limit hit, or a template error.
fn refusal(error: Error, fuel: u64, cap: usize, output_full: bool) -> Refusal {
    match error {
        error if error.kind() == ErrorKind::OutOfFuel => {
            let (message, hint) = if fuel < FUEL_PER_VALUE {
                (
                    format!(
                        "the templates of this manifest do too much work: together they ran past {FUEL_PER_MANIFEST} steps"
                    ),
                    "templates are for small substitutions; put computed values in `vars` or the environment",
                )
            } else {
                (
                    format!("template does too much work: it ran past {FUEL_PER_VALUE} steps"),
                    "loops in manifest templates must be small; write the value out, or put it in `vars`",
                )
            };
            Refusal::Limit {
                error,
                message,
                hint: hint.into(),
            }
        }
        error if output_full => {
            let (message, hint) = if cap < MAX_VALUE_BYTES {
                (
                    format!(
                        "the templates of this manifest render more than {} in all",
                        kib(MAX_MANIFEST_BYTES)
                    ),
                    "templates are for small substitutions",
                )
            } else {
                (
                    format!("template output is larger than {}", kib(MAX_VALUE_BYTES)),
                    "a manifest value rendered from a template can be at most this long",
                )
            };
            Refusal::Limit {
                error,
                message,
                hint: hint.into(),
            }
        }
        error if error.detail().is_some_and(|d| d.contains(FILTER_LIMIT)) => Refusal::Limit {
            message: format!(
                "template value is too large: {}",
                error.detail().unwrap_or_default()
            ),
            hint: format!(
                "values in manifest templates can be at most {}",
                kib(MAX_FILTER_BYTES)
            ),
            error,
        },
        error => Refusal::Template(error),
    }
}

fn kib(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// Output that refuses to grow past `cap` bytes.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
    hit: bool,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.hit = true;
            return Err(io::Error::other("template output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Marks errors raised by the filter guard.
const FILTER_LIMIT: &str = "over the limit of";

/// The default environment, whose filters the guards call.
fn builtins() -> &'static Environment<'static> {
    static BUILTINS: OnceLock<Environment<'static>> = OnceLock::new();
    BUILTINS.get_or_init(Environment::new)
}

/// The names in the `filters` listing of an environment's `Debug` output.
fn listed(env: &Environment<'_>, field: &str) -> Vec<String> {
    let debug = format!("{env:?}");
    let Some(start) = debug.find(&format!("{field}: [")) else {
        return Vec::new();
    };
    let rest = &debug[start + field.len() + 3..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end]
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn builtin_filters() -> Vec<String> {
    listed(builtins(), "filters")
}

/// A filter that checks its inputs and result against [`MAX_FILTER_BYTES`] and runs `name`.
fn guarded(
    name: &'static str,
) -> impl Fn(&State, Value, Rest<Value>) -> Result<Value, Error> + Send + Sync + 'static {
    move |_state: &State, value: Value, Rest(args): Rest<Value>| {
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(value);
        all.extend(args);
        for v in &all {
            within(name, "takes", size(v, MAX_FILTER_BYTES))?;
        }
        within(name, "would give", estimate(name, &all))?;
        let out = builtins().empty_state().apply_filter(name, &all)?;
        within(name, "gives", size(&out, MAX_FILTER_BYTES))?;
        Ok(out)
    }
}

fn within(name: &str, what: &str, size: usize) -> Result<(), Error> {
    if size > MAX_FILTER_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "`{name}` {what} a value {FILTER_LIMIT} {}",
                kib(MAX_FILTER_BYTES)
            ),
        ));
    }
    Ok(())
}

/// An upper bound of the size of what `replace` and `join` would build; 0 for other filters.
fn estimate(name: &str, args: &[Value]) -> usize {
    let text = |i: usize| args.get(i).and_then(Value::as_str);
    match name {
        "replace" => {
            let (Some(s), Some(from), Some(to)) = (text(0), text(1), text(2)) else {
                return 0;
            };
            let hits = if from.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(from).count()
            };
            s.len().saturating_add(hits.saturating_mul(to.len()))
        }
        "join" => {
            let sep = text(1).map_or(0, str::len);
            let Some(seq) = args.first() else { return 0 };
            let items = seq.len().unwrap_or(0);
            size(seq, MAX_FILTER_BYTES).saturating_add(items.saturating_mul(sep))
        }
        _ => 0,
    }
}

/// The size of `value` in bytes (strings) or items and their sizes (lists, maps), counted up to
/// just past `limit`.
fn size(value: &Value, limit: usize) -> usize {
    match value.kind() {
        ValueKind::String | ValueKind::Bytes => value
            .as_str()
            .map(str::len)
            .or_else(|| value.as_bytes().map(<[u8]>::len))
            .unwrap_or(0),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            let Ok(iter) = value.try_iter() else { return 0 };
            let mut total = 0usize;
            for item in iter {
                total = total.saturating_add(1 + size(&item, limit - total.min(limit)));
                if value.kind() == ValueKind::Map
                    && let Ok(v) = value.get_item(&item)
                {
                    total = total.saturating_add(size(&v, limit - total.min(limit)));
                }
                if total > limit {
                    break;
                }
            }
            total
        }
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_filters_and_functions_exist() {
        let env = environment();
        let filters = listed(&env, "filters");
        assert!(!filters.is_empty(), "the Debug listing changed");
        for f in &filters {
            assert!(FILTERS.contains(&f.as_str()), "unguarded filter `{f}`");
        }
        for f in FILTERS {
            assert!(filters.iter().any(|x| x == f), "filter `{f}` missing");
            assert!(
                builtin_filters().iter().any(|x| x == f),
                "`{f}` is not a minijinja filter"
            );
        }
        let globals = format!("{env:?}");
        for name in REMOVED_FUNCTIONS {
            assert!(
                !globals.contains(&format!("\"{name}\"")),
                "`{name}` is still there"
            );
        }
        assert!(globals.contains("\"range\""), "{globals}");
    }

    fn render_one(text: &str) -> Result<String, Refusal> {
        let mut env = environment();
        render(&mut env, text, &Value::from(()), &Budget::default())
    }

    fn limit(text: &str) -> String {
        match render_one(text) {
            Err(Refusal::Limit { message, .. }) => message,
            Err(Refusal::Construct { message, .. }) => message,
            Err(Refusal::Template(e)) => panic!("{text}: not a limit: {e}"),
            Ok(out) => panic!("{text}: rendered {} bytes", out.len()),
        }
    }

    #[test]
    fn nested_loops_run_out_of_fuel() {
        let bomb =
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(limit(bomb).contains("too much work"), "{}", limit(bomb));
    }

    #[test]
    fn output_is_capped() {
        let long = format!(
            "{{% for a in range(100000) %}}{}{{% endfor %}}",
            "y".repeat(1000)
        );
        assert!(
            limit(&long).contains("larger than 64 KiB"),
            "{}",
            limit(&long)
        );
    }

    #[test]
    fn repetition_and_self_feeding_statements_are_refused() {
        assert!(limit("{% for a in range(100000) %}{{ 'x' * 90000 }}{% endfor %}").contains("`*`"));
        assert!(limit("{{ [1] * 1000000000000 ~ '' }}").contains("`*`"));
        assert!(limit("{% set s = 'x' %}{{ s }}").contains("`{% set %}`"));
        assert!(
            limit("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}").contains("recursive")
        );
        // `*` inside a string or in the text around tags is not an operator.
        assert_eq!(
            render_one("cron(0 {{ '*' }} * * *)").ok().unwrap(),
            "cron(0 * * * *)"
        );
    }

    #[test]
    fn filters_are_bounded() {
        let grow = "{{ (range(60000)|join('')) | replace('1', '11111111111111111111') }}";
        assert!(limit(grow).contains("over the limit"), "{}", limit(grow));
        let join = "{{ range(100000)|join('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') }}";
        assert!(limit(join).contains("over the limit"), "{}", limit(join));
        // `list|string` makes a text five times longer (`['a', 'b']`); chained, the guard stops it.
        let chain = format!(
            "{{{{ '{}'{} }}}}",
            "a".repeat(100),
            "|list|string".repeat(12)
        );
        let out = render_one(&chain);
        assert!(matches!(out, Err(Refusal::Limit { .. })), "{out:?}");
        assert!(render_one("{{ namespace() }}").is_err());
        assert_eq!(
            render_one("{{ 'a-b'|replace('-', '_')|upper }}")
                .ok()
                .unwrap(),
            "A_B"
        );
        assert_eq!(
            render_one("{{ nothing|default('x') }}").unwrap_or_else(|e| panic!("{e:?}")),
            "x"
        );
    }

    #[test]
    fn a_manifest_shares_one_budget() {
        let budget = Budget::default();
        let mut env = environment();
        let loop_ = "{% for a in range(5000) %}{% endfor %}";
        let mut stopped = None;
        for i in 0..1000 {
            if let Err(e) = render(&mut env, loop_, &Value::from(()), &budget) {
                stopped = Some((i, e));
                break;
            }
        }
        let (i, e) = stopped.expect("the manifest budget stops it");
        assert!(i < 100, "stopped after {i} values");
        assert!(
            matches!(e, Refusal::Limit { ref message, .. } if message.contains("together")),
            "{e:?}"
        );
    }
}
