//! Cargo.toml tells the truth: the `rust-version` it declares is at least
//! the `rust-version` of every dependency the library is built with, as
//! `cargo metadata` reads them from the locked packages.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// `1.85`, `1.85.0` → (1, 85, 0).
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|part| part.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn rust_version_is_at_least_every_library_dependency_s() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages: BTreeMap<&str, &Value> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| (package["id"].as_str().unwrap_or_default(), package))
        .collect();
    let ours = packages
        .values()
        .find(|package| package["name"] == "scope-policy")
        .expect("the crate is in its own metadata");
    let declared = version(
        ours["rust_version"]
            .as_str()
            .expect("Cargo.toml declares rust-version"),
    );

    // The library's dependencies, transitively: normal and build edges, no dev ones.
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|node| (node["id"].as_str().unwrap_or_default(), node))
        .collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo = vec![ours["id"].as_str().unwrap_or_default()];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let library = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|kind| kind["kind"].is_null() || kind["kind"] == "build");
            let pkg = dep["pkg"].as_str().unwrap_or_default();
            if library && seen.insert(pkg) {
                todo.push(pkg);
            }
        }
    }
    assert!(seen.len() > 5, "the walk found the dependencies: {seen:?}");
    let too_new: Vec<String> = seen
        .iter()
        .filter_map(|id| {
            let package = packages[id];
            let needs = package["rust_version"].as_str()?;
            (version(needs) > declared)
                .then(|| format!("{} {} needs {needs}", package["name"], package["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version {declared:?} is below: {too_new:?}"
    );
}
