//! The Helm chart (helm/kms): tests/helm/check_chart.py renders it with every helm/kms/ci/*.yaml
//! value set through Helm's own template engine (the helm-python-sdk package binds Helm's Go
//! SDK), validates every object against the Kubernetes schemas (kubernetes-validate), checks the
//! references between objects and the rendered kmsd.toml, and checks that broken values are
//! refused. Then the real kmsd loads each rendered kmsd.toml as pod `kms-1` would. `.ci/run`
//! installs both Python packages; without them this test is skipped locally and fails under CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

const PACKAGES: &str = "helm-python-sdk kubernetes-validate";

#[test]
fn the_chart_renders_and_validates_with_every_value_set() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let available = Command::new("python3")
        .args(["-c", "import helm_python, kubernetes_validate, jsonschema, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install the chart test's Python packages: pip install {PACKAGES}"
        );
        println!("SKIPPED: python3 -m pip install {PACKAGES} to test the Helm chart");
        return;
    }
    let configs = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(root.join("tests/helm/check_chart.py"))
        .arg(root.join("helm/kms"))
        .arg(configs.path())
        .output()
        .expect("running tests/helm/check_chart.py");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(out.status.success(), "chart checks failed:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains(" passed, 0 failed"), "{report}");

    let rendered = kms_e2e::files_under(configs.path());
    assert!(rendered.len() >= 6, "{rendered:?}");
    for config in rendered {
        kmsd_accepts(&config);
    }
}

/// Runs kmsd on a rendered configuration as pod `kms-1` (node 2). The pod's files (root key,
/// HSM PIN, certificates) do not exist here, so a configuration kmsd accepts fails at the root
/// key, which kmsd reads after loading and validating the whole configuration.
fn kmsd_accepts(config: &Path) {
    let out = Command::new(kms_e2e::binary("kmsd"))
        .args(["run", "--config"])
        .arg(config)
        .env("HOSTNAME", "kms-1")
        .env_remove("KMS_ROOT_KEY")
        .env("KMSD_RAFT_ADVERTISE", "kms-1.kms-peers.kms-test.svc.cluster.local:8301")
        .output()
        .expect("running kmsd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = config.file_name().unwrap().to_string_lossy();
    assert!(!out.status.success(), "{name}: kmsd started without its root key?\n{stderr}");
    let reached = match name.split('.').next() {
        Some("pkcs11") => "reading the token PIN file",
        Some("root-key-env") => "reading the root key from $KMS_ROOT_KEY",
        _ => "reading the root key file",
    };
    assert!(stderr.contains(reached), "{name}: kmsd refused the configuration:\n{stderr}");
}
