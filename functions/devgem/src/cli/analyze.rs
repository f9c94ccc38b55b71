//! `devgem analyze PATH` and `devgem dockerfile PATH`: the analyzer on a local folder.

use crate::cli::say;
use anyhow::bail;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn checked(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!(
            "{} does not exist: give the folder of the app",
            path.display()
        );
    }
    if !path.is_dir() {
        bail!(
            "{} is not a folder: give the folder of the app",
            path.display()
        );
    }
    Ok(())
}

pub fn analyze(path: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    checked(&path)?;
    let analysis = devgem_analyzer::analyze(&path);
    if json {
        say(serde_json::to_string_pretty(&analysis.public())?);
    } else {
        say(format_args!("{}", analysis.summary()));
    }
    Ok(if analysis.is_recognized() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn dockerfile(path: PathBuf, write: bool) -> anyhow::Result<ExitCode> {
    checked(&path)?;
    let analysis = devgem_analyzer::analyze(&path);
    let plan = devgem_analyzer::plan(&analysis).map_err(|e| {
        anyhow::anyhow!(
            "Dockerfile generation failed: {} (fix: {})",
            e.reason,
            e.hint
        )
    })?;
    let dockerfile = devgem_analyzer::render_dockerfile(&plan);
    if write {
        std::fs::write(path.join("Dockerfile"), &dockerfile)?;
        std::fs::write(
            path.join(".dockerignore"),
            devgem_analyzer::render_dockerignore(&plan),
        )?;
        say(format_args!(
            "wrote {} and {}",
            path.join("Dockerfile").display(),
            path.join(".dockerignore").display()
        ));
    } else {
        say(dockerfile.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
