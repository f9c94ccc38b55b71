//! Copying a source tree: optionally honouring `.gitignore`, never copying `.git`, and never
//! following a symbolic link out of the tree.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// What to leave out of a copy.
pub(crate) struct CopyRules<'a> {
    /// Honour `.gitignore` files (and `.git/info/exclude`) inside the tree.
    pub gitignore: bool,
    /// Folder or file names skipped wherever they appear (`.git` always is).
    pub skip_names: &'a [&'a str],
}

/// What a copy did, for the log.
#[derive(Debug, Default)]
pub(crate) struct CopyReport {
    pub files: usize,
    /// Links whose target is outside the tree or missing: not copied.
    pub skipped_links: Vec<PathBuf>,
}

/// Copies the tree at `src` into the existing folder `dst`.
pub(crate) fn copy_tree(src: &Path, dst: &Path, rules: &CopyRules<'_>) -> io::Result<CopyReport> {
    let root = src.canonicalize()?;
    // A destination inside the source (a build folder under the checkout) must not be
    // copied into itself.
    let dst_real = dst.canonicalize()?;
    let skip: Vec<String> = rules.skip_names.iter().map(|s| s.to_string()).collect();
    let walk = ignore::WalkBuilder::new(&root)
        .standard_filters(false)
        .hidden(false)
        .git_ignore(rules.gitignore)
        .git_exclude(rules.gitignore)
        // A `.gitignore` outside the tree (say, in the user's home) must not hide app files.
        .parents(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| {
            let name = entry.file_name().to_string_lossy();
            name != ".git" && !skip.iter().any(|s| *s == name) && entry.path() != dst_real
        })
        .build();

    let mut report = CopyReport::default();
    for entry in walk {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(&root).map_err(io::Error::other)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dst.join(rel);
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            fs::create_dir_all(&target)?;
        } else if kind.is_symlink() {
            match link_inside(&root, entry.path())? {
                Some(relative) => {
                    std::os::unix::fs::symlink(relative, &target)?;
                }
                None => report.skipped_links.push(rel.to_path_buf()),
            }
        } else if kind.is_file() {
            // `fs::copy` keeps the permission bits, so scripts stay executable.
            fs::copy(entry.path(), &target)?;
            report.files += 1;
        }
        // Sockets, fifos and devices are not source code: left out.
    }
    Ok(report)
}

/// Removes every symbolic link under `root` whose target is outside it or missing (a clone's
/// links are the repository's to choose), and returns them relative to `root`.
pub(crate) fn drop_links_outside(root: &Path) -> io::Result<Vec<PathBuf>> {
    let root = root.canonicalize()?;
    let walk = ignore::WalkBuilder::new(&root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .build();
    let mut links = Vec::new();
    for entry in walk {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_some_and(|t| t.is_symlink()) {
            links.push(entry.into_path());
        }
    }
    let mut dropped = Vec::new();
    for link in links {
        if link_inside(&root, &link)?.is_none() {
            fs::remove_file(&link)?;
            dropped.push(link.strip_prefix(&root).unwrap_or(&link).to_path_buf());
        }
    }
    Ok(dropped)
}

/// For a link inside `root`: its target as a path relative to the link's folder, when the
/// target exists inside `root`; `None` when it points outside or nowhere.
fn link_inside(root: &Path, link: &Path) -> io::Result<Option<PathBuf>> {
    let Ok(resolved) = link.canonicalize() else {
        return Ok(None);
    };
    if !resolved.starts_with(root) {
        return Ok(None);
    }
    // Rewriting as a relative link keeps it valid in the copy even when it was absolute.
    let parent = link.parent().unwrap_or(root).canonicalize()?;
    Ok(Some(relative_path(&parent, &resolved)))
}

/// The path that leads from folder `from` to `to` (both absolute and normalised).
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Whether `dir` holds nothing but (maybe) a `.git` folder.
pub(crate) fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        if entry?.file_name() != ".git" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A relative path with no `..`, so `base.join(path)` stays inside `base`.
pub(crate) fn is_contained(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let check = |from: &str, to: &str, want: &str| {
            assert_eq!(
                relative_path(Path::new(from), Path::new(to)),
                Path::new(want)
            );
        };
        check("/a/b", "/a/b/c", "c");
        check("/a/b", "/a/c/d", "../c/d");
        check("/a/b", "/a/b", ".");
    }

    #[test]
    fn containment() {
        assert!(is_contained(Path::new(".")));
        assert!(is_contained(Path::new("apps/web")));
        assert!(!is_contained(Path::new("../x")));
        assert!(!is_contained(Path::new("/etc")));
        assert!(!is_contained(Path::new("a/../../b")));
    }
}
