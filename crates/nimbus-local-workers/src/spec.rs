//! What a pool runs: one function's package, interpreter and limits, and the worker command
//! line and environment derived from them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Variables of the runtime's own environment that workers inherit (the machine's locale, paths,
/// and outbound network setup: proxies and extra CA certificates); everything else comes from the
/// function's `env` and the pool.
const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

/// One function, as a pool runs it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function's neutral name (used in hooks and events).
    pub name: String,
    /// The unpacked package root: the worker's working directory.
    pub package_dir: PathBuf,
    /// The handler's language.
    pub language: Language,
    /// The real path of `python3.X` or `node` (resolved by the caller: never a pyenv shim).
    pub interpreter: PathBuf,
    /// The memory limit (0: none). Python: `RLIMIT_AS` set by the worker from
    /// `NIMBUS_MEMORY_LIMIT_MB`; Node: `--max-old-space-size`.
    pub memory_mb: u32,
    /// The timeout of one invocation, from the moment a worker takes it.
    pub timeout: Duration,
    /// The most worker processes (0 is taken as 1).
    pub max_concurrency: usize,
    /// How long an invocation waits for a busy worker before the pool starts another (one start
    /// at a time, up to `max_concurrency`); [`FunctionSpec::DEFAULT_SCALE_UP_WAIT`] unless a
    /// caller has a reason. See [`Pool`](crate::Pool).
    pub scale_up_wait: Duration,
    /// Invocations are sent to a busy worker ahead of their turn (see [`Pool`](crate::Pool),
    /// "Sending ahead") only while recent ones lasted less than this on average (zero: never);
    /// [`FunctionSpec::DEFAULT_SEND_AHEAD_BELOW`] unless a caller has a reason.
    pub send_ahead_below: Duration,
    /// A worker idle this long is stopped.
    pub idle_timeout: Duration,
    /// How many invocations may wait beyond one per worker the pool may have (`max_concurrency`,
    /// started or not); beyond that, invocations fail with `Overloaded`.
    pub max_queued: usize,
    /// The function's environment variables.
    pub env: BTreeMap<String, String>,
}

/// The language of a function's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// Python 3.11+: `<interpreter> -m _nimbus.local_worker`.
    Python,
    /// Node.js 20+: `<interpreter> --enable-source-maps --max-old-space-size=<memory_mb>
    /// _nimbus/local_worker.js`.
    Node,
}

impl FunctionSpec {
    /// The usual [`FunctionSpec::scale_up_wait`]: longer than the queueing of a small burst of
    /// quick invocations (tens of microseconds each), short next to a cold start. It only tells
    /// a passing queue from a lasting one: beyond one worker per CPU the pool also needs a worker
    /// blocked in its handler to grow (see [`Pool`](crate::Pool)).
    pub const DEFAULT_SCALE_UP_WAIT: Duration = Duration::from_millis(2);

    /// The usual [`FunctionSpec::send_ahead_below`]: an invocation sent ahead waits for the one
    /// running to end, so only quick functions are worth it.
    pub const DEFAULT_SEND_AHEAD_BELOW: Duration = Duration::from_millis(2);

    /// The pool size limit, at least 1.
    pub(crate) fn capacity(&self) -> usize {
        self.max_concurrency.max(1)
    }

    /// The worker's arguments after the interpreter.
    pub(crate) fn worker_args(&self) -> Vec<String> {
        match self.language {
            Language::Python => vec!["-m".into(), "_nimbus.local_worker".into()],
            Language::Node => {
                // Stack traces point at the sources a bundler or compiler mapped from.
                let mut args = vec!["--enable-source-maps".to_string()];
                if self.memory_mb > 0 {
                    args.push(format!("--max-old-space-size={}", self.memory_mb));
                }
                args.push("_nimbus/local_worker.js".into());
                args
            }
        }
    }

    /// The worker's whole environment: a few inherited variables ([`INHERITED_ENV`]), then the
    /// function's `env`, then `extra` (see [`Hooks::spawn_env`](crate::Hooks::spawn_env)), then
    /// what the shims need (these win over the function's).
    pub(crate) fn worker_env(&self, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = INHERITED_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect();
        if self.language == Language::Python {
            // One malloc arena for the main thread and one shared by the others: with
            // RLIMIT_AS, each thread's own 64 MiB arena reservation would eat the limit.
            env.insert("MALLOC_ARENA_MAX".into(), "2".into());
        }
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.insert("NIMBUS_PROVIDER".into(), "local".into());
        if self.memory_mb > 0 {
            env.insert("NIMBUS_MEMORY_LIMIT_MB".into(), self.memory_mb.to_string());
        } else {
            env.remove("NIMBUS_MEMORY_LIMIT_MB");
        }
        if self.language == Language::Python {
            env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
            env.insert("PYTHONUNBUFFERED".into(), "1".into());
        }
        env
    }

    /// The worker command: cwd = package root, stdin = null, its own process group, `extra`
    /// added to the environment. The caller adds stdout, stderr and the protocol fds.
    pub(crate) fn command(&self, extra: &BTreeMap<String, String>) -> Command {
        let mut cmd = Command::new(&self.interpreter);
        cmd.args(self.worker_args())
            .current_dir(&self.package_dir)
            .env_clear()
            .envs(self.worker_env(extra))
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(language: Language, memory_mb: u32) -> FunctionSpec {
        FunctionSpec {
            name: "f".into(),
            package_dir: "/pkg".into(),
            language,
            interpreter: "/usr/bin/x".into(),
            memory_mb,
            timeout: Duration::from_secs(3),
            max_concurrency: 0,
            scale_up_wait: FunctionSpec::DEFAULT_SCALE_UP_WAIT,
            send_ahead_below: FunctionSpec::DEFAULT_SEND_AHEAD_BELOW,
            idle_timeout: Duration::from_secs(60),
            max_queued: 10,
            env: BTreeMap::from([
                ("A".into(), "1".into()),
                ("NIMBUS_PROVIDER".into(), "aws".into()),
                ("MALLOC_ARENA_MAX".into(), "8".into()),
            ]),
        }
    }

    #[test]
    fn python_command_and_environment() {
        let s = spec(Language::Python, 128);
        assert_eq!(s.worker_args(), ["-m", "_nimbus.local_worker"]);
        let env = s.worker_env(&BTreeMap::new());
        assert_eq!(env["A"], "1");
        assert_eq!(env["NIMBUS_PROVIDER"], "local");
        assert_eq!(env["NIMBUS_MEMORY_LIMIT_MB"], "128");
        assert_eq!(env["PYTHONUNBUFFERED"], "1");
        assert_eq!(env["PYTHONDONTWRITEBYTECODE"], "1");
        assert_eq!(
            env["MALLOC_ARENA_MAX"], "8",
            "the function's own value wins"
        );
        assert_eq!(s.capacity(), 1);
        // Variables given at spawn win over the function's `env`, not over the shims'.
        let extra = BTreeMap::from([
            ("A".to_string(), "2".to_string()),
            ("NIMBUS_PROVIDER".to_string(), "x".to_string()),
        ]);
        let env = s.worker_env(&extra);
        assert_eq!(env["A"], "2");
        assert_eq!(env["NIMBUS_PROVIDER"], "local");
    }

    #[test]
    fn node_command_and_environment() {
        let s = spec(Language::Node, 256);
        assert_eq!(
            s.worker_args(),
            [
                "--enable-source-maps",
                "--max-old-space-size=256",
                "_nimbus/local_worker.js"
            ]
        );
        let env = s.worker_env(&BTreeMap::new());
        assert!(!env.contains_key("PYTHONUNBUFFERED"));
        let unlimited = spec(Language::Node, 0);
        assert_eq!(
            unlimited.worker_args(),
            ["--enable-source-maps", "_nimbus/local_worker.js"]
        );
        assert!(
            !unlimited
                .worker_env(&BTreeMap::new())
                .contains_key("NIMBUS_MEMORY_LIMIT_MB")
        );
    }
}
