//! Packaging errors: each names the function and the file, says what is wrong and how to fix it.

use std::path::PathBuf;

/// Why a function could not be packaged.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A symlink points outside the function's directory.
    #[error(
        "`{path}` is a symlink to `{target}`, outside the function's directory `{root}`; packages never follow links out of their tree (copy the file in, or move the function)"
    )]
    SymlinkEscapes {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
        /// The function's directory.
        root: PathBuf,
    },
    /// The function's directory is, or passes through, a symlink out of the project.
    #[error(
        "`{path}` is a symlink to `{target}`, outside the project `{project}`; packages never follow links out of the project (move the code into the project, or the manifest above it)"
    )]
    DirEscapes {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
        /// The manifest's directory.
        project: PathBuf,
    },
    /// A symlink points nowhere.
    #[error("`{path}` is a symlink to a file that does not exist")]
    DanglingSymlink {
        /// The link.
        path: PathBuf,
    },
    /// A file cannot be read.
    #[error(
        "cannot read `{path}`: {reason}; fix its permissions or exclude it with `package: {{ exclude: [...] }}`"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A package glob is malformed or leaves the function's directory.
    #[error("invalid package glob `{glob}`: {reason}")]
    BadGlob {
        /// The glob as written.
        glob: String,
        /// What is wrong.
        reason: String,
    },
    /// The handler file itself was left out by the package globs.
    #[error(
        "the handler file `{file}` is not in the package; check `package.include` and `package.exclude`"
    )]
    HandlerExcluded {
        /// The handler file.
        file: String,
    },
    /// The handler file itself looks like a secret.
    #[error(
        "the handler file `{file}` looks like a secret ({why}), so it is left out of the package; move the secret out of the code, or add `{file}` to `package.include` to ship it anyway"
    )]
    HandlerLooksSecret {
        /// The handler file.
        file: String,
        /// Why it looks like a secret.
        why: String,
    },
    /// A user file has the same path as a file Nimbus adds.
    #[error(
        "`{path}` in the function's directory clashes with the {provider} entry point Nimbus adds; rename it"
    )]
    Clash {
        /// The path in the package.
        path: String,
        /// The provider.
        provider: String,
    },
    /// A tool needed to install dependencies is missing.
    #[error(
        "`{tool}` is needed to install the dependencies in `{manifest}` but was not found on PATH\n  hint: {hint}"
    )]
    ToolMissing {
        /// The tool.
        tool: String,
        /// The dependency file.
        manifest: String,
        /// What is installed, and how to get what is missing.
        hint: String,
    },
    /// Installing dependencies failed.
    #[error(
        "{tool} could not install `{manifest}` (exit {status}):\n{output}{}",
        .log.as_ref().map(|l| format!("\n  full log: {}", l.display())).unwrap_or_default()
    )]
    DepsFailed {
        /// `pip` or `npm`.
        tool: String,
        /// The user's dependency file.
        manifest: String,
        /// The exit status.
        status: String,
        /// The tool's own error lines.
        output: String,
        /// Where the tool's whole output was kept.
        log: Option<PathBuf>,
    },
    /// Installed native Node addons were built for another CPU or OS than the function's.
    #[error(
        "`{manifest}` installed native addons that will not load on linux-{cpu} (they were built for the machine that ran npm):{files}"
    )]
    ForeignAddons {
        /// The user's dependency file.
        manifest: String,
        /// The function's CPU, in npm's spelling.
        cpu: &'static str,
        /// One line per addon: its path and what it was built for.
        files: String,
    },
    /// The package is larger than the provider accepts.
    #[error("the package is {actual} MB {what}; {provider} accepts at most {limit} MB")]
    TooLarge {
        /// `zipped` or `unzipped`.
        what: &'static str,
        /// Size in MB.
        actual: u64,
        /// Limit in MB.
        limit: u64,
        /// The provider's name.
        provider: String,
    },
    /// Another I/O failure.
    #[error("{action} `{path}`")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Packaging one function failed.
    #[error("function `{function}`: {source}")]
    Function {
        /// The function.
        function: String,
        /// Why.
        #[source]
        source: Box<PackageError>,
    },
    /// Several functions failed.
    #[error("{} functions could not be packaged:\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Many(Vec<PackageError>),
}

impl PackageError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> PackageError {
        let path = path.into();
        move |source| PackageError::Io {
            action,
            path,
            source,
        }
    }
}
