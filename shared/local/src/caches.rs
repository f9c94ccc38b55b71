//! One package cache per package manager, shared by every build on this machine: each tool is
//! pointed at its own folder under the cache root (`$DEVGEM_HOME/cache/pip`, `.../npm`...)
//! through the environment variable it reads, so a redeploy finds the packages the last build
//! downloaded instead of fetching them again.

use std::path::Path;

/// The environment variables that give each package manager its folder under `root`.
///
/// Only tools that ignore variables they do not know are given theirs unconditionally; pnpm's
/// settings are `npm_config_*` names, which npm warns about, so they come only when the build
/// uses pnpm. A Yarn Berry project (one with `.yarnrc.yml`) keeps its own `cacheFolder` (a
/// zero-install repository commits it): only its global folder is shared.
pub(crate) fn package_cache_env(
    root: &Path,
    uses_pnpm: bool,
    yarn_berry: bool,
) -> Vec<(String, String)> {
    let dir = |name: &str| root.join(name).to_string_lossy().into_owned();
    let mut env = vec![
        ("PIP_CACHE_DIR".to_string(), dir("pip")),
        ("UV_CACHE_DIR".to_string(), dir("uv")),
        ("npm_config_cache".to_string(), dir("npm")),
        ("BUN_INSTALL_CACHE_DIR".to_string(), dir("bun")),
        ("CARGO_HOME".to_string(), dir("cargo")),
        ("GOMODCACHE".to_string(), dir("go-mod")),
        ("GOCACHE".to_string(), dir("go-build")),
        ("YARN_GLOBAL_FOLDER".to_string(), dir("yarn-berry")),
    ];
    if !yarn_berry {
        env.push(("YARN_CACHE_FOLDER".to_string(), dir("yarn")));
    }
    if uses_pnpm {
        // The store must be on the builds' file system for pnpm to hard-link from it; both
        // live under DEVGEM_HOME.
        env.push(("npm_config_store_dir".to_string(), dir("pnpm-store")));
        env.push(("npm_config_cache_dir".to_string(), dir("pnpm")));
    }
    env
}

/// FNV-1a, 64 bits: a stable name for a cache entry (the entry also stores what it was made
/// from, so a collision is a miss, never a wrong hit).
pub(crate) fn stable_hash(parts: &[&[u8]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0xff]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_package_manager_gets_its_own_folder_under_the_root() {
        let env = package_cache_env(Path::new("/home/u/.devgem/cache"), true, false);
        assert_eq!(
            value(&env, "PIP_CACHE_DIR"),
            Some("/home/u/.devgem/cache/pip")
        );
        assert_eq!(
            value(&env, "UV_CACHE_DIR"),
            Some("/home/u/.devgem/cache/uv")
        );
        assert_eq!(
            value(&env, "npm_config_cache"),
            Some("/home/u/.devgem/cache/npm")
        );
        assert_eq!(
            value(&env, "YARN_CACHE_FOLDER"),
            Some("/home/u/.devgem/cache/yarn")
        );
        assert_eq!(
            value(&env, "npm_config_store_dir"),
            Some("/home/u/.devgem/cache/pnpm-store")
        );
        assert_eq!(
            value(&env, "CARGO_HOME"),
            Some("/home/u/.devgem/cache/cargo")
        );
    }

    #[test]
    fn npm_is_not_given_pnpm_settings_and_berry_keeps_its_cache_folder() {
        let env = package_cache_env(Path::new("/c"), false, true);
        assert_eq!(value(&env, "npm_config_store_dir"), None);
        assert_eq!(value(&env, "YARN_CACHE_FOLDER"), None);
        assert_eq!(value(&env, "YARN_GLOBAL_FOLDER"), Some("/c/yarn-berry"));
    }

    #[test]
    fn the_hash_is_stable_and_separates_parts() {
        assert_eq!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"ab", b"c"]));
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
    }
}
