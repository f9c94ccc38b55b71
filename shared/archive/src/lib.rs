//! Source archives. The analyze stage packs the checkout into one gzipped tar in object
//! storage and the builder unpacks it, so the two can run on different machines; a user's
//! upload (`devgem deploy PATH --server URL`) arrives in the same format.
//!
//! An archive is untrusted input whoever made it: [`unpack`] refuses entries that would land
//! outside the destination, keeps only links that stay inside it (as a clone does), leaves out
//! hard links and special files, and stops at size and entry limits so that a small upload
//! cannot fill the disk.

use std::path::{Component, Path, PathBuf};

/// How much an archive may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the files once unpacked.
    pub max_unpacked_bytes: u64,
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_unpacked_bytes: 2 << 30,
            max_entries: 200_000,
        }
    }
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive is not a gzipped tar ({0})")]
    Malformed(String),
    #[error("the archive entry {0:?} would land outside the source folder")]
    Escapes(String),
    #[error("the archive unpacks to more than {limit} {what}")]
    TooLarge { limit: u64, what: &'static str },
    #[error("the archive could not be unpacked: {0}")]
    Io(#[from] std::io::Error),
}

impl ArchiveError {
    /// Whether the archive itself is at fault (a 4xx), not this machine (a 5xx).
    pub fn is_the_archives_fault(&self) -> bool {
        !matches!(self, ArchiveError::Io(_))
    }
}

/// What [`unpack`] left out, for the user to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub files: u64,
    pub bytes: u64,
    /// Links pointing outside the folder, hard links and special files.
    pub skipped: Vec<String>,
}

/// Packs `dir` (links kept as links, never followed) into a `.tar.gz`.
pub fn pack(dir: &Path) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)?;
    tar.into_inner()?.finish()
}

/// Unpacks `bytes` into `dest` (a folder that exists) under the rules in the module doc.
pub fn unpack(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<Unpacked, ArchiveError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let mut report = Unpacked::default();
    let mut entries_seen = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Malformed(e.to_string()))?;
        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(ArchiveError::TooLarge {
                limit: limits.max_entries,
                what: "entries",
            });
        }
        let raw = entry
            .path()
            .map_err(|e| ArchiveError::Malformed(e.to_string()))?
            .into_owned();
        let shown = raw.to_string_lossy().into_owned();
        let Some(relative) = contained(&raw) else {
            return Err(ArchiveError::Escapes(shown));
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| ArchiveError::Malformed(e.to_string()))?
                .map(|t| t.into_owned());
            let parent = relative.parent().unwrap_or(Path::new(""));
            let inside = target.is_some_and(|t| contained(&parent.join(t)).is_some());
            if !inside {
                report.skipped.push(shown);
                continue;
            }
        } else if !(kind.is_file() || kind.is_dir() || kind == tar::EntryType::Continuous) {
            // Hard links, devices, fifos: not source code.
            if !kind.is_pax_global_extensions() && !kind.is_pax_local_extensions() {
                report.skipped.push(shown);
            }
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        report.bytes += size;
        if report.bytes > limits.max_unpacked_bytes {
            return Err(ArchiveError::TooLarge {
                limit: limits.max_unpacked_bytes,
                what: "bytes",
            });
        }
        // `unpack_in` also refuses to write through a link that leads out of `dest`.
        if !entry.unpack_in(dest)? {
            return Err(ArchiveError::Escapes(shown));
        }
        if kind.is_file() {
            report.files += 1;
        }
    }
    Ok(report)
}

/// `path` without `.` parts, when it stays inside its root (relative, no `..` above the top).
fn contained(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped tar written entry by entry, including entries `tar::Builder` would refuse.
    fn raw_archive(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, kind, data, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // Written into the raw name field so that `..` and absolute paths get through.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(link) = link {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn round_trips_a_tree_with_an_inner_link() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/c.txt"), "hello").unwrap();
        std::os::unix::fs::symlink("b/c.txt", src.path().join("a/link")).unwrap();
        let bytes = pack(src.path()).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let report = unpack(&bytes, dest.path(), &Limits::default()).unwrap();
        assert_eq!(report.files, 1);
        assert!(report.skipped.is_empty(), "{report:?}");
        assert_eq!(
            std::fs::read_to_string(dest.path().join("a/link")).unwrap(),
            "hello"
        );
    }

    #[test]
    fn entries_that_escape_are_refused_by_name() {
        for path in ["../evil.txt", "/etc/evil", "a/../../evil"] {
            let bytes = raw_archive(&[(path, tar::EntryType::Regular, b"x", None)]);
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&bytes, dest.path(), &Limits::default()).unwrap_err();
            assert!(
                matches!(&err, ArchiveError::Escapes(p) if p == path),
                "{err}"
            );
            assert!(err.is_the_archives_fault());
        }
    }

    #[test]
    fn links_out_of_the_folder_and_special_files_are_left_out() {
        let bytes = raw_archive(&[
            ("app.py", tar::EntryType::Regular, b"print(1)", None),
            ("passwd", tar::EntryType::Symlink, b"", Some("/etc/passwd")),
            ("up", tar::EntryType::Symlink, b"", Some("../../secret")),
            ("hard", tar::EntryType::Link, b"", Some("app.py")),
            ("fifo", tar::EntryType::Fifo, b"", None),
        ]);
        let dest = tempfile::tempdir().unwrap();
        let report = unpack(&bytes, dest.path(), &Limits::default()).unwrap();
        assert_eq!(report.files, 1);
        assert_eq!(report.skipped, ["passwd", "up", "hard", "fifo"]);
        assert!(dest.path().join("app.py").is_file());
        assert!(std::fs::symlink_metadata(dest.path().join("passwd")).is_err());
    }

    #[test]
    fn limits_stop_a_bomb_and_garbage_is_malformed() {
        let big = vec![0u8; 10_000];
        let bytes = raw_archive(&[("big.bin", tar::EntryType::Regular, &big, None)]);
        let dest = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_unpacked_bytes: 1_000,
            ..Limits::default()
        };
        assert!(matches!(
            unpack(&bytes, dest.path(), &limits),
            Err(ArchiveError::TooLarge { what: "bytes", .. })
        ));
        assert!(matches!(
            unpack(b"not an archive", dest.path(), &Limits::default()),
            Err(ArchiveError::Malformed(_))
        ));
    }
}
