//! The build context: the app's folder as a tar, less what the `.dockerignore` leaves out,
//! with the rendered Dockerfile and `.dockerignore` at its root (as the Docker CLI sends them:
//! the engine reads both, and drops them from the context when the ignore file lists them).

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::Path;

/// The names the rendered files take in the context.
pub const DOCKERFILE: &str = "Dockerfile";
pub const DOCKERIGNORE: &str = ".dockerignore";

/// The `.dockerignore` patterns as a matcher. Docker's patterns are relative to the context
/// root (`node_modules` is only the top one; `**/node_modules` is any), so each is anchored.
fn matcher(root: &Path, dockerignore: &str) -> Result<Gitignore, String> {
    let mut builder = GitignoreBuilder::new(root);
    for line in dockerignore.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negated, pattern) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        let anchored = format!("{}/{pattern}", if negated { "!" } else { "" });
        builder
            .add_line(None, &anchored)
            .map_err(|e| format!("the .dockerignore line {line:?} is not a pattern: {e}"))?;
    }
    builder
        .build()
        .map_err(|e| format!("the .dockerignore is not valid: {e}"))
}

/// The context of `root` as an uncompressed tar.
pub fn pack(root: &Path, dockerfile: &str, dockerignore: &str) -> Result<Vec<u8>, String> {
    let ignore = matcher(root, dockerignore)?;
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let io = |e: std::io::Error| format!("could not pack the build context: {e}");
    add_dir(&mut tar, root, Path::new(""), &ignore).map_err(io)?;
    for (name, text) in [(DOCKERFILE, dockerfile), (DOCKERIGNORE, dockerignore)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, text.as_bytes())
            .map_err(io)?;
    }
    tar.into_inner().map_err(io)
}

fn add_dir(
    tar: &mut tar::Builder<Vec<u8>>,
    root: &Path,
    rel: &Path,
    ignore: &Gitignore,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    // A stable order: the same files give the same context, and the same cache keys.
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = rel.join(entry.file_name());
        let kind = entry.file_type()?;
        if rel.as_os_str().is_empty()
            && (name == Path::new(DOCKERFILE) || name == Path::new(DOCKERIGNORE))
        {
            continue;
        }
        if ignore
            .matched_path_or_any_parents(&name, kind.is_dir())
            .is_ignore()
        {
            continue;
        }
        let path = root.join(&name);
        if kind.is_dir() {
            tar.append_dir(&name, &path)?;
            add_dir(tar, root, &name, ignore)?;
        } else if kind.is_file() || kind.is_symlink() {
            tar.append_path_with_name(&path, &name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_bytes: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn leaves_out_what_the_dockerignore_names_and_adds_the_rendered_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "app.py",
            ".env",
            ".env.example",
            "Dockerfile",
            "node_modules/x/index.js",
            "src/node_modules/kept.js",
            "src/debug.log",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let ignore = "# comment\n.env\n.env.*\n!.env.example\nnode_modules\n*.log\nDockerfile*\n";
        let tar = pack(root, "FROM scratch\n", ignore).unwrap();
        assert_eq!(
            names(&tar),
            [
                ".dockerignore",
                ".env.example",
                "Dockerfile",
                "app.py",
                "src",
                "src/debug.log",
                "src/node_modules",
                "src/node_modules/kept.js",
            ]
        );
        // The Dockerfile in the context is the rendered one, not the repository's.
        let mut archive = tar::Archive::new(&tar[..]);
        let mut dockerfile = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap() == Path::new("Dockerfile"))
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut dockerfile, &mut text).unwrap();
        assert_eq!(text, "FROM scratch\n");
    }
}
