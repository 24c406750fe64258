//! What every signature check of one configuration rests on, built in one place: the trust
//! anchors (configured files plus the CA/QC services of the trusted lists) and the lists that
//! decide qualification. The poststelle's verifier, the provider's integrity check and
//! `demailctl qes verify` are all made from it, so a list imported once counts everywhere.

use std::path::PathBuf;

use openssl::x509::X509;

use crate::integrity::ValidationContext;
use crate::revocation::RevocationChecker;
use crate::tl::TrustedLists;
use crate::{Verifier, VerifyOptions};

pub struct TrustSetup {
    pub anchors: Vec<X509>,
    pub lists: TrustedLists,
}

impl TrustSetup {
    /// The anchors of `anchor_files` (PEM or DER) and of `lists`. Errors name the file.
    pub fn new(anchor_files: &[PathBuf], lists: TrustedLists) -> Result<TrustSetup, String> {
        let mut anchors = Vec::new();
        for path in anchor_files {
            let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            anchors.extend(
                crate::load_anchors(&data, &path.display().to_string())
                    .map_err(|e| e.to_string())?,
            );
        }
        anchors.extend(lists.anchors());
        Ok(TrustSetup { anchors, lists })
    }

    /// A CMS/S-MIME verifier on these anchors and lists.
    pub fn verifier(
        &self,
        options: VerifyOptions,
        revocation: Box<dyn RevocationChecker>,
    ) -> Result<Verifier, String> {
        Ok(Verifier::new(self.anchors.clone(), options)
            .map_err(|e| e.to_string())?
            .with_revocation(revocation)
            .with_qualification(Box::new(self.lists.clone())))
    }

    /// The context of an `X-de-mail-integrity` check on these anchors and lists; `signers`
    /// restricts whose signature counts (see [`ValidationContext::signers`]).
    pub fn validation_context(
        &self,
        signers: Option<Vec<X509>>,
        revocation: Box<dyn RevocationChecker>,
    ) -> ValidationContext {
        ValidationContext {
            anchors: self.anchors.clone(),
            intermediates: Vec::new(),
            at: None,
            qualification: Box::new(self.lists.clone()),
            signers,
            revocation: Some(revocation),
        }
    }
}
