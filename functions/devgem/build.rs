//! Hands the linker the list of functions the one-shot analyzer commands run
//! (hot-symbols.txt, made by scripts/hot-symbols.sh), so that they sit next to each other in
//! the release binary and `devgem analyze` faults in a few pages of code instead of dozens
//! spread over 18 MB. Only for release builds with LLD, the default linker of this target.

fn main() {
    println!("cargo::rerun-if-changed=hot-symbols.txt");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    // A linker chosen in RUSTFLAGS may not be LLD, which alone takes the option.
    let custom_linker = std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("link"));
    if target != "x86_64-unknown-linux-gnu" || profile != "release" || custom_linker {
        return;
    }
    let list = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hot-symbols.txt");
    println!(
        "cargo::rustc-link-arg-bin=devgem=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    // A stale list only costs speed: symbols it names that are gone are skipped quietly.
    println!("cargo::rustc-link-arg-bin=devgem=-Wl,--no-warn-symbol-ordering");
}
