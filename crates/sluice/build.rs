//! Records build facts for `/loki/api/v1/status/buildinfo`.

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|text| !text.is_empty())
}

fn main() {
    // An image build has no .git: docker/Dockerfile passes these in.
    let revision = std::env::var("SLUICE_REVISION")
        .ok()
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let branch = std::env::var("SLUICE_BRANCH")
        .ok()
        .or_else(|| output("git", &["rev-parse", "--abbrev-ref", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let date = output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SLUICE_REVISION={revision}");
    println!("cargo:rustc-env=SLUICE_BRANCH={branch}");
    println!("cargo:rustc-env=SLUICE_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=SLUICE_BUILD_USER={user}");
    println!("cargo:rustc-env=SLUICE_BUILD_DATE={date}");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-env-changed=SLUICE_REVISION");
    println!("cargo:rerun-if-env-changed=SLUICE_BRANCH");
}
