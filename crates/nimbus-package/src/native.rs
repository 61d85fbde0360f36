//! Native Node addons (`*.node` shared objects) in an installed `node_modules`, checked against
//! the CPU the function runs on in the cloud. npm picks the right prebuilt binary of packages that
//! publish one per platform (`optionalDependencies` with `os`/`cpu`/`libc`, chosen by the
//! `--os`/`--cpu`/`--libc` we pass), but an addon compiled at install time (node-gyp) or
//! downloaded by an install script is built for the machine that ran `npm`; shipped to another
//! CPU it fails only when the function first loads it. This finds those before packaging.
//!
//! Addons under a `prebuilds/` folder are left alone: loaders such as `node-gyp-build` choose
//! among them by platform at run time.

use std::path::{Path, PathBuf};

/// ELF `e_machine` of x86-64.
const EM_X86_64: u16 = 62;
/// ELF `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;

/// The CPU a package targets, in npm's spelling (`x64`, `arm64`).
pub(crate) fn npm_cpu(arm64: bool) -> &'static str {
    if arm64 { "arm64" } else { "x64" }
}

/// The addons under `node_modules` that would not load on a Linux `cpu` (`x64` or `arm64`),
/// each with what it was built for, relative to `root`.
pub(crate) fn foreign_addons(root: &Path, cpu: &str) -> Vec<(PathBuf, String)> {
    let want = if cpu == "arm64" {
        EM_AARCH64
    } else {
        EM_X86_64
    };
    let mut found = Vec::new();
    let mut stack = vec![root.join("node_modules")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != "prebuilds" {
                    stack.push(path);
                }
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "node") {
                let built_for = machine(&path);
                if built_for.as_ref().is_none_or(|(m, _)| *m != want) {
                    let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                    found.push((shown, built_for.map_or("not Linux".into(), |(_, n)| n)));
                }
            }
        }
    }
    found.sort();
    found
}

/// The ELF machine of `path` and its name, or `None` when it is not an ELF file (a macOS or
/// Windows addon).
fn machine(path: &Path) -> Option<(u16, String)> {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    let m = match head[5] {
        2 => u16::from_be_bytes([head[18], head[19]]),
        _ => u16::from_le_bytes([head[18], head[19]]),
    };
    let name = match m {
        EM_X86_64 => "x64".to_string(),
        EM_AARCH64 => "arm64".to_string(),
        other => format!("ELF machine {other}"),
    };
    Some((m, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2; // 64-bit
        bytes[5] = 1; // little-endian
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        bytes
    }

    #[test]
    fn addons_for_another_cpu_are_found_and_prebuilds_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str, bytes: &[u8]| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        put("node_modules/gyp/build/Release/addon.node", &elf(EM_X86_64));
        put("node_modules/ok-arm/lib.node", &elf(EM_AARCH64));
        put(
            "node_modules/multi/prebuilds/linux-x64/m.node",
            &elf(EM_X86_64),
        );
        put(
            "node_modules/mac/mac.node",
            b"\xcf\xfa\xed\xfe rest of a Mach-O",
        );
        put("node_modules/gyp/index.js", b"module.exports = 1;");

        let arm = foreign_addons(dir.path(), "arm64");
        let shown: Vec<(String, String)> = arm
            .iter()
            .map(|(p, m)| (p.display().to_string(), m.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "node_modules/gyp/build/Release/addon.node".to_string(),
                    "x64".to_string()
                ),
                (
                    "node_modules/mac/mac.node".to_string(),
                    "not Linux".to_string()
                ),
            ]
        );
        let x64 = foreign_addons(dir.path(), "x64");
        assert_eq!(x64.len(), 2, "{x64:?}");
        assert!(
            x64.iter()
                .any(|(p, m)| p.ends_with("ok-arm/lib.node") && m == "arm64")
        );
    }
}
