//! Fuzz targets for every parser of demail-gateway that reads what others send: one function
//! per target taking the raw input, calling the real parser and asserting what must hold for
//! any input (no panic, and the round trips and properties named at each target).
//!
//! `fuzz/libfuzzer` runs them under cargo-fuzz (nightly); `tests/smoke.rs` runs each over its
//! seeds and deterministic mutations of them on stable, in `cargo test`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use demail_policy::{Config, Signature, SignatureOutcome, Signed};
use demail_trust::der::{self, Reader, Tlv};
use demail_trust::integrity::{self, Alg, HashAlg, SigAlg};
use demail_trust::{Verifier, VerifyOptions};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// A fuzz target: any input, no return; a failed property panics.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/libfuzzer`, `fuzz/run` and the smoke run know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("qc_statements", qc_statements),
    ("der", der),
    ("certificate", certificate),
    ("cms", cms),
    ("cms_file", cms_file),
    ("smime_mail", smime_mail),
    ("integrity", integrity),
    ("integrity_tags", integrity_tags),
    ("confirmation", confirmation),
    ("confirmation_xml", confirmation_xml),
    ("subject_tags", subject_tags),
    ("demail_options", demail_options),
    ("config", config),
    ("trusted_list", trusted_list),
    ("imap_client", imap_client),
    ("imap_mailbox_name", imap_mailbox_name),
];

/// The workspace root (seeds are named relative to it in `fuzz/seeds.txt`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ lies in the workspace")
        .to_path_buf()
}

/// qcStatements (ETSI EN 319 412-5) with our DER reader.
pub fn qc_statements(data: &[u8]) {
    let _ = demail_trust::qc::parse(data);
}

/// The DER/BER reader itself: every element and all its accessors, walked as deep as the
/// reader allows. Each element lies inside its parent, its content inside its own bytes, and
/// the children of a definite-length element fill it exactly.
pub fn der(data: &[u8]) {
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let Ok(tlv) = r.read() else { break };
        walk(data, &tlv);
    }
    let _ = der::parse_single(data, "fuzz");
    let _ = der::decode_oid(data);
}

fn walk(outer: &[u8], tlv: &Tlv<'_>) {
    let start = tlv.offset;
    assert!(
        start + tlv.raw.len() <= outer.len(),
        "element beyond its input"
    );
    assert_eq!(&outer[start..start + tlv.raw.len()], tlv.raw, "offset off");
    let within = |inner: &[u8], outer: &[u8]| {
        let (i, o) = (inner.as_ptr() as usize, outer.as_ptr() as usize);
        i >= o && i + inner.len() <= o + outer.len()
    };
    assert!(within(tlv.content, tlv.raw), "content outside its element");
    let _ = tlv.oid();
    let _ = tlv.integer_bytes();
    let _ = tlv.small_uint();
    let _ = tlv.boolean();
    let _ = tlv.octets();
    let _ = tlv.bit_string();
    let _ = tlv.time();
    let _ = tlv.string();
    if let Ok(children) = tlv.children()
        && let Ok(all) = children.all()
    {
        let definite = tlv.raw.len() >= 2 && tlv.raw[1] != 0x80;
        let filled: usize = all.iter().map(|c| c.raw.len()).sum();
        if definite {
            assert_eq!(
                filled,
                tlv.content.len(),
                "children do not fill their parent"
            );
        }
        for c in &all {
            assert!(within(c.raw, tlv.content), "child outside its parent");
            walk(outer, c);
        }
    }
}

/// A certificate (OpenSSL's parse and ours) and every field validation reads from it.
pub fn certificate(data: &[u8]) {
    demail_trust::fuzzing::certificate(data);
}

/// CMS ContentInfo and SignedData with signed attributes; the SignedData rebuilt for OpenSSL
/// (one signer, or all) parses again to the same signers and content.
pub fn cms(data: &[u8]) {
    demail_trust::fuzzing::cms(data);
    let _ = demail_trust::certificates_in_cms(data);
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| Verifier::new(Vec::new(), VerifyOptions::default()).expect("verifier"))
}

/// A CMS file as `demailctl qes verify` takes it (DER, PEM or base64), whole and split into a
/// detached signature and its content: a report, never an error for bad CMS, and every report
/// renders its header line.
pub fn cms_file(data: &[u8]) {
    let report = verifier()
        .verify_file(data, "fuzz.p7m", None)
        .expect("a file that is no mail is reported on, not refused");
    for s in &report.signatures {
        let _ = s.header_value();
    }
    if data.len() > 8 {
        let (sig, content) = data.split_at(data.len() / 2);
        let _ = verifier().verify_file(sig, "fuzz.p7s", Some((content, "doc")));
    }
}

/// A whole mail to the poststelle: MIME walk, transfer decoding, signature discovery and
/// validation; at most `max_signatures` reports, each with a header line that is one line.
pub fn smime_mail(data: &[u8]) {
    let report = verifier().verify_mail(data);
    assert!(report.signatures.len() <= verifier().options().max_signatures);
    for s in &report.signatures {
        let line = s.header_value();
        assert!(
            !line.contains(['\r', '\n']),
            "a header value with a line break"
        );
    }
}

fn seal_key() -> &'static (PKey<Private>, X509) {
    static K: OnceLock<(PKey<Private>, X509)> = OnceLock::new();
    K.get_or_init(|| {
        use openssl::asn1::Asn1Time;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::x509::{X509Builder, X509NameBuilder};
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "fuzz seal").expect("CN");
        let name = name.build();
        let mut b = X509Builder::new().expect("builder");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
            .expect("not before");
        b.set_not_after(&Asn1Time::days_from_now(1).expect("time"))
            .expect("not after");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        (key, b.build())
    })
}

/// `X-de-mail-integrity` over a whole message: verification never panics, and what we seal
/// (hash only, or signed) verifies, whatever the message looks like.
pub fn integrity(data: &[u8]) {
    let _ = integrity::verify(data);
    if let Ok(sealed) = integrity::hash_only(data, HashAlg::Sha256) {
        let r = integrity::verify(&sealed);
        assert!(r.passed(), "our own hash-only seal fails: {r:?}");
    }
    let (key, cert) = seal_key();
    let alg = Alg {
        hash: HashAlg::Sha256,
        sig: SigAlg::EcDsa,
    };
    if let Ok(signed) = integrity::sign(data, key, cert, alg) {
        let r = integrity::verify(&signed);
        assert!(r.passed(), "our own signature fails: {r:?}");
        assert!(r.signed);
    }
}

/// The tag list alone: names are tag names, unique; each value is its range's bytes without
/// the folding white space around them.
pub fn integrity_tags(data: &[u8]) {
    let Ok(tags) = demail_trust::fuzzing::integrity_tags(data) else {
        return;
    };
    assert!(!tags.is_empty());
    for (i, (name, value, range)) in tags.iter().enumerate() {
        assert!(name.starts_with(|c: char| c.is_ascii_alphabetic()));
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(
            tags[..i].iter().all(|(n, _, _)| n != name),
            "tag {name} twice"
        );
        let raw = String::from_utf8_lossy(&data[range.clone()]);
        let trimmed = raw.trim_matches([' ', '\t', '\r', '\n']);
        assert_eq!(trimmed, value);
    }
}

/// A confirmation or notification mail from the provider: its XML and PDF parts found by
/// content, what the XML states read the same every time, every stated text trimmed.
pub fn confirmation(data: &[u8]) {
    demail_milter::fuzzing::confirmation(data);
}

/// The confirmation XML (`urn:de-mail` Acknowledge-Message / Notification-Message) alone.
pub fn confirmation_xml(data: &[u8]) {
    demail_milter::fuzzing::confirmation_xml(data);
}

/// The scratch directory and configuration the policy targets run against.
fn fixture() -> &'static (tempfile::TempDir, Config) {
    static F: OnceLock<(tempfile::TempDir, Config)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("scratch directory");
        std::fs::create_dir(dir.path().join("tls")).expect("tls directory");
        for f in ["client.pem", "client.key", "ca.pem", "imap.pem", "imap.key"] {
            std::fs::write(dir.path().join("tls").join(f), "placeholder\n").expect("write");
        }
        let text = include_str!("../fixture/demail.toml");
        let config = Config::parse(text, &dir.path().join("demail.toml"))
            .unwrap_or_else(|e| panic!("fixture configuration refused:\n{e}"));
        (dir, config)
    })
}

/// A subject as a clerk is shown it: every look-alike of our tags removed, the earned tag in
/// front. Cleaning is idempotent (a cleaned subject cleans to itself, with or without the
/// earned tag), and every tag we set, whatever signer name it carries, is one our cleaner
/// removes again (so a forwarded mail cannot carry it on).
pub fn subject_tags(data: &[u8]) {
    let tags = &fixture().1.tags;
    let text = String::from_utf8_lossy(data);
    let _ = demail_policy::decode_encoded_words(&text);
    for earned in [
        None,
        Some(tags.qes_valid.as_str()),
        Some(&tags.authoritative),
    ] {
        let once = tags
            .subject(&text, earned)
            .unwrap_or_else(|| text.to_string());
        assert_eq!(
            tags.subject(&once, earned),
            None,
            "cleaning {text:?} with {earned:?} is not idempotent: {once:?}"
        );
    }
    let signatures = [Signature {
        outcome: SignatureOutcome::PassedQes,
        signed: Signed::Attachment {
            signer: text.to_string(),
        },
    }];
    let tag = tags.for_signatures(&signatures).expect("a QES earns a tag");
    assert!(
        !tag.contains(['\r', '\n']),
        "a tag with a line break: {tag:?}"
    );
    let shown = tags.subject(&tag, None).unwrap_or_else(|| tag.clone());
    assert_eq!(
        shown, "",
        "our own tag {tag:?} survives cleaning as {shown:?}"
    );
}

/// Subject option tags and `X-DeMail-Options` (first line: the subject, the rest: the field)
/// for a sender of a public body and of a private tenant. A refusal is a 5.x.x SMTP reply
/// that is printable ASCII on one line; an accepted subject has no option tag left.
pub fn demail_options(data: &[u8]) {
    let config = &fixture().1;
    let text = String::from_utf8_lossy(data);
    let (subject, field) = text.split_once('\n').unwrap_or((&text, ""));
    for sender in ["clerk@magdeburg.example", "clerk@hv.example"] {
        let grant = config
            .authorise_sender(sender, None)
            .expect("fixture sender");
        let account_defaults = grant.account.default_options;
        match config.resolve_options(grant, subject, Some(field)) {
            Ok(r) => {
                assert_eq!(r.subject_changed, r.subject != subject);
                let grant = config.authorise_sender(sender, None).expect("sender");
                let again = config
                    .resolve_options(grant, &r.subject, None)
                    .expect("the tidied subject resolves");
                assert!(
                    !again.subject_changed,
                    "an option tag left in {:?}",
                    r.subject
                );
                assert_eq!(again.options, account_defaults);
            }
            Err(refusal) => {
                assert!(refusal.status.starts_with("5."));
                for reply in [&refusal.german, &refusal.english] {
                    assert!(
                        reply.bytes().all(|b| (0x20..0x7f).contains(&b)),
                        "a reply that is no printable ASCII line: {reply:?}"
                    );
                }
            }
        }
    }
}

/// `demail.toml` as the daemons and `demailctl check-config` read it: a verdict, never a
/// panic; every problem names this file and a line of it; an accepted file also passes the
/// pinning check without panicking.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = fixture().0.path().join("demail.toml");
    match Config::parse(text, &path) {
        Ok(c) => {
            let _ = c.pinning();
        }
        Err(e) => {
            assert_eq!(e.file, path);
            assert!(!e.errors.is_empty(), "refused without a reason");
            let lines = text.lines().count().max(1);
            for err in &e.errors {
                assert!(
                    (1..=lines).contains(&err.line),
                    "{}:{} is no line of the file ({lines} lines): {}",
                    err.key,
                    err.line,
                    err.message
                );
                assert!(!err.message.is_empty());
            }
        }
    }
}

/// A trusted list (ETSI TS 119 612) as imported after its signature verified: the list as
/// stored (JSON) reads back the same, and loads into the verifier or is refused.
pub fn trusted_list(data: &[u8]) {
    let Ok(list) = demail_trust::fuzzing::trusted_list(data) else {
        return;
    };
    let json = serde_json::to_vec(&list).expect("a list serialises");
    let back: demail_trust::tl::model::ListData =
        serde_json::from_slice(&json).expect("a stored list reads back");
    assert_eq!(back, list, "the stored list reads back differently");
    let _ = demail_trust::fuzzing::load_lists(list);
}

/// A client's byte stream through the proxy's framer (every byte passed on unchanged, in
/// order, the kept message exactly the one framed) and every complete message through the
/// tokenizer, the command classification helpers, LIST/LOGIN/AUTHENTICATE/ID parsing and what
/// a selected virtual folder does with FETCH/STORE/SEARCH/COPY/MOVE before it reads evidence
/// (sequence sets resolved the same by range and by membership). The first two bytes set the
/// line and keep limits.
pub fn imap_client(data: &[u8]) {
    demail_imap_proxy::fuzzing::client_stream(data);
}

/// A mailbox name from a client: modified UTF-7 is canonical both ways, and the virtual
/// folders are found under both wire forms (and only there) for three namespace layouts.
pub fn imap_mailbox_name(data: &[u8]) {
    let names = &fixture()
        .1
        .imap_proxy
        .as_ref()
        .expect("fixture has [imap_proxy]")
        .folders;
    demail_imap_proxy::fuzzing::mailbox_name(names, data);
}
