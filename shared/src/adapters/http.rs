//! The one HTTPS client every AWS SDK client here uses: rustls with ring, trusting the Amazon
//! Trust Services roots that AWS service endpoints chain to.
//!
//! Why not the SDK's default client: it reads the platform's whole certificate store when the
//! configuration is loaded (on Debian, ~146 files under /etc/ssl/certs), which was most of a
//! function's cold start, and it links aws-lc beside the ring that the rest of the stack uses.
//! Five roots compiled into the binary cost no file reads and parse in microseconds.
//!
//! A network that intercepts TLS (a corporate proxy with its own CA) needs the platform store:
//! set `BLUEGREEN_TLS_ROOTS=native` in the function's environment.

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The roots AWS documents for its service endpoints (Amazon Root CA 1–4 and the Starfield
/// Services Root G2 that cross-signs them).
pub const AMAZON_TRUST_SERVICES: &str = include_str!("../../certs/amazon-trust-services.pem");

/// The environment variable that switches to the platform's certificate store.
pub const ROOTS_VARIABLE: &str = "BLUEGREEN_TLS_ROOTS";

/// Which certificates to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The compiled-in Amazon Trust Services roots (the default).
    AmazonTrustServices,
    /// The platform's store, read when the first connection is made.
    Native,
}

impl Roots {
    /// Reads [`ROOTS_VARIABLE`]: `native` selects the platform store; unset, empty or `amazon`
    /// the compiled-in roots. Anything else is refused, so a typo cannot silently change trust.
    pub fn from_env_value(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") | Some("amazon") => Ok(Self::AmazonTrustServices),
            Some("native") => Ok(Self::Native),
            Some(other) => Err(format!(
                "{ROOTS_VARIABLE}={other:?} is not understood: use \"amazon\" (default) or \"native\""
            )),
        }
    }

    fn trust_store(self) -> TrustStore {
        match self {
            Self::AmazonTrustServices => {
                TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES)
            }
            Self::Native => TrustStore::default(),
        }
    }
}

/// Builds the HTTPS client. Fails only if the trust store cannot be built.
pub fn https_client(roots: Roots) -> Result<SharedHttpClient, String> {
    let context = TlsContext::builder()
        .with_trust_store(roots.trust_store())
        .build()
        .map_err(|e| format!("building the TLS context: {e}"))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use sha2::{Digest, Sha256};

    /// SHA-256 fingerprints published at https://www.amazontrust.com/repository/.
    const PINNED: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield Services Root G2
    ];

    #[test]
    fn the_compiled_in_roots_are_exactly_the_pinned_amazon_roots() {
        let fingerprints: Vec<String> =
            CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES.as_bytes())
                .map(|c| {
                    Sha256::digest(c.unwrap().as_ref())
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                })
                .collect();
        assert_eq!(fingerprints, PINNED);
    }

    #[test]
    fn roots_are_chosen_explicitly_and_a_typo_is_refused() {
        assert_eq!(Roots::from_env_value(None), Ok(Roots::AmazonTrustServices));
        assert_eq!(
            Roots::from_env_value(Some("amazon")),
            Ok(Roots::AmazonTrustServices)
        );
        assert_eq!(Roots::from_env_value(Some(" native ")), Ok(Roots::Native));
        let err = Roots::from_env_value(Some("nativ")).unwrap_err();
        assert!(err.contains("BLUEGREEN_TLS_ROOTS=\"nativ\""), "{err}");
    }

    #[tokio::test]
    async fn both_trust_stores_build_a_client() {
        https_client(Roots::AmazonTrustServices).unwrap();
        https_client(Roots::Native).unwrap();
    }
}
