//! The cluster's key material, made on first start and reused after: a CA (ECDSA P-256), the
//! API server's serving certificate, an admin client certificate (`O=system:masters`) and the
//! service-account signing key. Private keys are written mode 0600 in a 0700 directory.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{0}: not a valid PEM file")]
    Pem(PathBuf),
}

/// The user the admin kubeconfig authenticates as.
pub const ADMIN_USER: &str = "nanokube-admin";
/// The first address of the service CIDR, where in-cluster clients find the API.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";

/// Paths and PEM contents of everything in `<data-dir>/pki`.
#[derive(Clone, Debug)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// PKCS#8 PEM of the ECDSA P-256 key that signs service-account tokens.
    pub sa_key_pem: String,
    pub sa_pub_pem: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// Writes a file readable only by its owner (0600), replacing it atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(contents).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_err(path))
}

fn new_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

fn dn(cn: &str, orgs: &[&str]) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    for o in orgs {
        d.push(DnType::OrganizationName, *o);
    }
    d.push(DnType::CommonName, cn);
    d
}

fn leaf_params(cn: &str, orgs: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn, orgs);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let now = time_now();
    p.not_before = now - std::time::Duration::from_secs(3600);
    p.not_after = now + std::time::Duration::from_secs(365 * 24 * 3600);
    p
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl Pki {
    /// Loads the key material from `dir`, generating whatever is missing. The serving
    /// certificate covers localhost, 127.0.0.1, the `kubernetes` service names, 10.96.0.1 and
    /// `advertise` when given.
    pub fn load_or_create(dir: &Path, advertise: Option<IpAddr>) -> Result<Pki, PkiError> {
        ensure_private_dir(dir)?;
        let p = |n: &str| dir.join(n);

        let (ca_cert_pem, ca_key_pem) = if p("ca.crt").exists() && p("ca.key").exists() {
            (read(&p("ca.crt"))?, read(&p("ca.key"))?)
        } else {
            let key = new_key()?;
            let mut params = CertificateParams::default();
            params.distinguished_name = dn("nanokube-ca", &[]);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let now = time_now();
            params.not_before = now - std::time::Duration::from_secs(3600);
            params.not_after = now + std::time::Duration::from_secs(10 * 365 * 24 * 3600);
            let cert = params.self_signed(&key)?;
            let (c, k) = (cert.pem(), key.serialize_pem());
            write_private(&p("ca.key"), k.as_bytes())?;
            write_private(&p("ca.crt"), c.as_bytes())?;
            (c, k)
        };
        let ca_key = KeyPair::from_pem(&ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key)?;

        let (serving_cert_pem, serving_key_pem) =
            if p("apiserver.crt").exists() && p("apiserver.key").exists() {
                (read(&p("apiserver.crt"))?, read(&p("apiserver.key"))?)
            } else {
                let key = new_key()?;
                let mut params = leaf_params("kube-apiserver", &[]);
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                let mut sans = Vec::new();
                for dns in [
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ] {
                    sans.push(SanType::DnsName(dns.try_into()?));
                }
                let mut ips: Vec<IpAddr> =
                    vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([10, 96, 0, 1])];
                if let Some(a) = advertise
                    && !ips.contains(&a)
                {
                    ips.push(a);
                }
                sans.extend(ips.into_iter().map(SanType::IpAddress));
                params.subject_alt_names = sans;
                let cert = params.signed_by(&key, &issuer)?;
                let (c, k) = (cert.pem(), key.serialize_pem());
                write_private(&p("apiserver.key"), k.as_bytes())?;
                write_private(&p("apiserver.crt"), c.as_bytes())?;
                (c, k)
            };

        let (admin_cert_pem, admin_key_pem) = if p("admin.crt").exists() && p("admin.key").exists()
        {
            (read(&p("admin.crt"))?, read(&p("admin.key"))?)
        } else {
            let (c, k) = issue_client_cert(&issuer, ADMIN_USER, &["system:masters"])?;
            write_private(&p("admin.key"), k.as_bytes())?;
            write_private(&p("admin.crt"), c.as_bytes())?;
            (c, k)
        };

        let (sa_key_pem, sa_pub_pem) = if p("sa.key").exists() && p("sa.pub").exists() {
            (read(&p("sa.key"))?, read(&p("sa.pub"))?)
        } else {
            let key = new_key()?;
            let (k, pubk) = (key.serialize_pem(), key.public_key_pem());
            write_private(&p("sa.key"), k.as_bytes())?;
            write_private(&p("sa.pub"), pubk.as_bytes())?;
            (k, pubk)
        };

        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem,
            ca_key_pem,
            serving_cert_pem,
            serving_key_pem,
            admin_cert_pem,
            admin_key_pem,
            sa_key_pem,
            sa_pub_pem,
        })
    }

    /// Issues a client certificate for `user` in `groups`, signed by the cluster CA.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<(String, String), PkiError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, ca_key)?;
        issue_client_cert(&issuer, user, groups)
    }

    /// An admin kubeconfig for `server` (`https://127.0.0.1:6443`).
    pub fn admin_kubeconfig(&self, server: &str) -> String {
        kubeconfig(
            server,
            &self.ca_cert_pem,
            ADMIN_USER,
            &self.admin_cert_pem,
            &self.admin_key_pem,
        )
    }
}

fn issue_client_cert(
    issuer: &Issuer<'_, KeyPair>,
    user: &str,
    groups: &[&str],
) -> Result<(String, String), PkiError> {
    let key = new_key()?;
    let mut params = leaf_params(user, groups);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A kubeconfig with one cluster, one client-certificate user and one context, all named
/// `nanokube`.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: nanokube\ncontexts:\n- context:\n    cluster: nanokube\n    user: {user}\n  name: nanokube\ncurrent-context: nanokube\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_creates_private_keys_and_restart_reuses_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki_dir = dir.path().join("pki");
        let a = Pki::load_or_create(&pki_dir, None).expect("create");
        for key in ["ca.key", "apiserver.key", "admin.key", "sa.key"] {
            let mode = fs::metadata(pki_dir.join(key))
                .expect("stat")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
        let b = Pki::load_or_create(&pki_dir, None).expect("reload");
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.serving_cert_pem, b.serving_cert_pem);
        assert_eq!(a.sa_key_pem, b.sa_key_pem);
    }

    #[test]
    fn serving_certificate_names_the_kubernetes_service() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki =
            Pki::load_or_create(dir.path(), Some(IpAddr::from([192, 0, 2, 7]))).expect("create");
        let der = rustls_pemfile::certs(&mut pki.serving_cert_pem.as_bytes())
            .next()
            .expect("one cert")
            .expect("pem");
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse");
        let san = cert
            .subject_alternative_name()
            .expect("ext")
            .expect("san")
            .value;
        let names = format!("{:?}", san.general_names);
        for want in [
            "kubernetes.default.svc.cluster.local",
            "localhost",
            "10.96.0.1",
            "192.0.2.7",
            "127.0.0.1",
        ] {
            assert!(
                names.contains(want) || names.contains(&want.replace('.', ", ")),
                "{want} in {names}"
            );
        }
    }
}
