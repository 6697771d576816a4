//! `kmsctl ca ...` and `kmsctl token ...`: the credentials a region needs, made locally.
//!
//! A region's CA issues two kinds of certificates: node certificates, which carry the URI SAN
//! `kms://<region>/node` that kmsd requires on its Raft port, and client certificates, whose URI
//! SAN (or CN) is the principal key policies and audit records name. Private keys are written
//! with mode 0600 and never overwritten.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Subcommand;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::CliError;
use crate::json::Json;
use crate::render::Obj;

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA: <out-dir>/ca.crt (give it to kmsd's [tls] ca and to clients' --ca-bundle)
    /// and <out-dir>/ca.key (keep it offline).
    Create {
        #[arg(long)]
        out_dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "kms region CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// Issue a certificate signed by the CA in --ca-dir: <out-dir>/<name>.crt and <name>.key.
    Issue {
        /// Directory holding ca.crt and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
        /// File name and common name; for a client certificate also its principal unless --uri
        /// is given.
        #[arg(long)]
        name: String,
        /// A node certificate for this region (URI SAN kms://<region>/node; server and client
        /// use). Without it, a client certificate.
        #[arg(long, value_name = "REGION")]
        node: Option<String>,
        /// A DNS name the node is reached by (repeatable).
        #[arg(long)]
        dns: Vec<String>,
        /// An IP address the node is reached by (repeatable).
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// A URI SAN, e.g. spiffe://corp/billing: a client's principal (repeatable; the first
        /// one is the principal).
        #[arg(long)]
        uri: Vec<String>,
        #[arg(long, default_value_t = 397)]
        days: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a random bearer token for a principal; prints the token (give it to the client, it is
    /// shown once) and the `[tokens]` line for kmsd.toml (which holds only its SHA-256).
    Create {
        #[arg(long)]
        principal: String,
    },
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn other(doing: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Other(format!("{doing}: {e}"))
}

/// Writes a new file; refuses to replace an existing one (a lost CA key cannot be undone).
fn write_new(path: &Path, contents: &str, private: bool) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            usage(format!("{} already exists; remove it first or choose another --out-dir", path.display()))
        } else {
            other(&format!("creating {}", path.display()), e)
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(|e| other(&format!("writing {}", path.display()), e))
}

fn validity(params: &mut CertificateParams, days: i64) -> Result<(), CliError> {
    if !(1..=36_500).contains(&days) {
        return Err(usage("--days must be between 1 and 36500"));
    }
    let now = OffsetDateTime::now_utc();
    // A little slack for clocks that are behind.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    Ok(())
}

fn create_ca(out_dir: &Path, name: &str, days: i64) -> Result<Json, CliError> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| other("preparing the CA", e))?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days)?;
    let key = KeyPair::generate().map_err(|e| other("generating the CA key", e))?;
    let cert = params.self_signed(&key).map_err(|e| other("signing the CA certificate", e))?;
    std::fs::create_dir_all(out_dir).map_err(|e| other(&format!("creating {}", out_dir.display()), e))?;
    let (cert_path, key_path) = (out_dir.join("ca.crt"), out_dir.join("ca.key"));
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    Ok(Obj::new()
        .str("Certificate", &cert_path.display().to_string())
        .str("PrivateKey", &key_path.display().to_string())
        .done())
}

struct IssueRequest<'a> {
    name: &'a str,
    node_region: Option<&'a str>,
    dns: &'a [String],
    ip: &'a [IpAddr],
    uri: &'a [String],
    days: i64,
}

fn issue(ca_dir: &Path, out_dir: &Path, request: IssueRequest<'_>) -> Result<Json, CliError> {
    let read = |file: &str| {
        let path = ca_dir.join(file);
        std::fs::read_to_string(&path).map_err(|e| usage(format!("reading {}: {e}", path.display())))
    };
    let ca_key = KeyPair::from_pem(&read("ca.key")?).map_err(|e| usage(format!("ca.key: {e}")))?;
    let issuer =
        Issuer::from_ca_cert_pem(&read("ca.crt")?, ca_key).map_err(|e| usage(format!("ca.crt: {e}")))?;

    let mut params =
        CertificateParams::new(request.dns.to_vec()).map_err(|e| usage(format!("--dns: {e}")))?;
    params.distinguished_name.push(DnType::CommonName, request.name);
    params.subject_alt_names.extend(request.ip.iter().map(|ip| SanType::IpAddress(*ip)));
    let node_uri = request.node_region.map(|region| format!("kms://{region}/node"));
    for uri in node_uri.iter().chain(request.uri) {
        let uri = uri.clone().try_into().map_err(|e| usage(format!("--uri {uri}: {e}")))?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = match request.node_region {
        Some(_) => vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
        None => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    if request.node_region.is_some() && request.dns.is_empty() && request.ip.is_empty() {
        return Err(usage("a node certificate needs at least one --dns or --ip that clients and peers use"));
    }
    validity(&mut params, request.days)?;
    let key = KeyPair::generate().map_err(|e| other("generating the key", e))?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| other("signing the certificate", e))?;
    std::fs::create_dir_all(out_dir).map_err(|e| other(&format!("creating {}", out_dir.display()), e))?;
    let cert_path = out_dir.join(format!("{}.crt", request.name));
    let key_path = out_dir.join(format!("{}.key", request.name));
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    let principal =
        node_uri.or_else(|| request.uri.first().cloned()).unwrap_or_else(|| request.name.to_string());
    Ok(Obj::new()
        .str("Certificate", &cert_path.display().to_string())
        .str("PrivateKey", &key_path.display().to_string())
        .str("Principal", &principal)
        .done())
}

fn create_token(principal: &str) -> Result<Json, CliError> {
    if principal.is_empty() {
        return Err(usage("--principal must not be empty"));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| other("drawing random bytes", e))?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let digest = base16ct::lower::encode_string(&Sha256::digest(token.as_bytes()));
    Ok(Obj::new()
        .str("Principal", principal)
        .str("Token", &token)
        .str("ConfigLine", &format!("{} = \"sha256:{digest}\"", toml_key(principal)))
        .done())
}

/// A TOML key for `principal`: bare when it can be, quoted otherwise (URIs have ':' and '/').
fn toml_key(principal: &str) -> String {
    if principal.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        principal.to_string()
    } else {
        format!("\"{}\"", principal.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

pub fn run_ca(command: CaCommand) -> Result<Json, CliError> {
    match command {
        CaCommand::Create { out_dir, name, days } => create_ca(&out_dir, &name, days),
        CaCommand::Issue { ca_dir, out_dir, name, node, dns, ip, uri, days } => {
            if name.is_empty() || name.contains('/') {
                return Err(usage("--name must be a non-empty file name"));
            }
            let request = IssueRequest {
                name: &name,
                node_region: node.as_deref(),
                dns: &dns,
                ip: &ip,
                uri: &uri,
                days,
            };
            issue(&ca_dir, &out_dir, request)
        }
    }
}

pub fn run_token(command: TokenCommand) -> Result<Json, CliError> {
    match command {
        TokenCommand::Create { principal } => create_token(&principal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_issues_node_and_client_certificates_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        create_ca(&ca, "test CA", 30).unwrap();
        assert!(create_ca(&ca, "test CA", 30).is_err(), "an existing CA must not be replaced");
        let dns = vec!["localhost".to_string()];
        let node =
            IssueRequest { name: "n1", node_region: Some("eu-1"), dns: &dns, ip: &[], uri: &[], days: 30 };
        let out = issue(&ca, dir.path(), node).unwrap();
        assert!(out.to_pretty().contains("kms://eu-1/node"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("n1.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private keys are owner-only");
        let uri = vec!["spiffe://corp/app".to_string()];
        let client = IssueRequest { name: "app", node_region: None, dns: &[], ip: &[], uri: &uri, days: 30 };
        assert!(issue(&ca, dir.path(), client).unwrap().to_pretty().contains("spiffe://corp/app"));
    }

    #[test]
    fn tokens_come_with_their_digest_line() {
        let out = create_token("spiffe://corp/app").unwrap().to_pretty();
        assert!(out.contains(r#"\"spiffe://corp/app\" = \"sha256:"#), "{out}");
    }
}
