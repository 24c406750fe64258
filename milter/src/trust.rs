//! The trust snapshot of one configuration: the poststelle's signature verifier and the
//! provider (its integrity-check context and pinned certificates), both made from one
//! [`TrustSetup`]. Built on first use after a (re)load, so `demailctl tl import` followed by a
//! reload reaches every path at once.

use std::sync::{Arc, Mutex};

use demail_policy::{Config, Revocation};
use demail_trust::integrity::ValidationContext;
use demail_trust::pins::ProviderPins;
use demail_trust::revocation::{self, RevocationChecker, RevocationMode};
use demail_trust::setup::TrustSetup;
use demail_trust::tl::TrustedLists;
use demail_trust::{ValidationModel, Verifier, VerifyOptions};

use crate::error::Error;

pub struct Snapshot {
    /// CMS/S-MIME signatures of poststelle mail; its caches live across messages.
    pub verifier: Verifier,
    pub provider: Provider,
}

/// The provider, as the configuration pins it.
pub struct Provider {
    /// The `X-de-mail-integrity` check: the anchors and lists, only the pinned seals,
    /// revocation per `[trust]`.
    pub validation: ValidationContext,
    /// Its TLS client certificates and seal certificates.
    pub pins: ProviderPins,
}

#[derive(Default)]
pub struct Snapshots {
    current: Mutex<Option<(Arc<Config>, Arc<Snapshot>)>>,
}

impl Snapshots {
    /// The snapshot of `config`. Blocking (file I/O) on first use after a reload.
    pub fn get(&self, config: &Arc<Config>) -> Result<Arc<Snapshot>, Error> {
        let lock = || self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, s)) = lock().as_ref()
            && Arc::ptr_eq(c, config)
        {
            return Ok(Arc::clone(s));
        }
        // Built outside the lock: two messages racing after a reload may both build, which
        // costs time once but never blocks the others behind file I/O.
        let snapshot = Arc::new(build(config)?);
        *lock() = Some((Arc::clone(config), Arc::clone(&snapshot)));
        Ok(snapshot)
    }
}

fn build(config: &Config) -> Result<Snapshot, Error> {
    let trust = &config.trust;
    // What `demailctl tl import` stored (verified then); none stored gives no qualification.
    let lists =
        TrustedLists::load(&trust.trusted_lists).map_err(|e| Error::Trust(e.to_string()))?;
    let setup = TrustSetup::new(&trust.anchors, lists).map_err(Error::Trust)?;
    let revocation = || -> Box<dyn RevocationChecker> {
        let mode = match trust.revocation {
            Revocation::Ocsp => RevocationMode::Ocsp,
            Revocation::Crl => RevocationMode::Crl,
            Revocation::Off => RevocationMode::Off,
        };
        // The configuration contract names no CRL files yet.
        revocation::from_settings(mode, trust.ocsp_timeout, &[])
    };
    let options = VerifyOptions {
        model: match trust.validation_model {
            demail_policy::ValidationModel::Chain => ValidationModel::Chain,
            demail_policy::ValidationModel::Shell => ValidationModel::Shell,
        },
        ..VerifyOptions::default()
    };
    let verifier = setup
        .verifier(options, revocation())
        .map_err(Error::Trust)?;
    // An unpinned configuration pins nothing: no client and no signer is the provider.
    let i = &config.inbound;
    let pins = if i.unpinned.is_empty() {
        ProviderPins::load(
            i.provider_client_ca.as_deref(),
            &i.provider_client_certificates,
            &i.provider_signers,
        )
        .map_err(Error::Trust)?
    } else {
        ProviderPins::default()
    };
    let validation = setup.validation_context(Some(pins.signers.clone()), revocation());
    Ok(Snapshot {
        verifier,
        provider: Provider { validation, pins },
    })
}
