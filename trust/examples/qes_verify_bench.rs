//! The QES verification benchmark (bench/qes-verify runs it; see bench/README.md): N signed
//! mails of about 100 KB verified three ways side by side in one process, so the ratios mean
//! something on any machine. Three kinds of mail, each under the same test chain (RSA-2048
//! root -> RSA-2048 intermediate -> signing leaf):
//!
//! - `rsa`: S/MIME multipart/signed, RSA-2048 leaf.
//! - `ecdsa`: the same with an ECDSA P-256 leaf.
//! - `pdf`: a multipart/mixed mail with a PDF attachment and its detached `antrag.pdf.p7s`
//!   (RSA-2048 leaf), as a poststelle receives signed documents.
//!
//! The three ways:
//!
//! - `verify_mail`: [`demail_trust::Verifier::verify_mail`] on the raw mail, what the milter
//!   does for the poststelle (MIME scan, CMS, path to the anchor, attributes, report).
//! - `floor`: SHA-256 of the signed bytes plus one signature verification with the leaf's
//!   algorithm, with OpenSSL: the cryptography any verifier has to do per message.
//! - `cms_verify`: `openssl cms -verify -binary` through the openssl crate (`CMS_verify` with
//!   the root in the store; the intermediate travels in the CMS), on the signed bytes and the
//!   decoded signature.
//!
//! Prints numbers and ratios (and result lines to `$BENCH_RESULTS`); asserts only that every
//! message verifies in every variant, so a fast failure cannot pass for a fast success.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use demail_trust::{Indication, Verifier, VerifyOptions};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier as PkVerifier};
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

const SIGNER: &str = "erika.mustermann@example.org";
const BOUNDARY: &str = "----=_bench_boundary";
const VARIANTS: [&str; 3] = ["verify_mail", "floor", "cms_verify"];
const KINDS: [Kind; 3] = [Kind::Rsa, Kind::Ecdsa, Kind::Pdf];
/// The issue's target for verify_mail against the floor, on one core.
const TARGET_RATIO: f64 = 0.5;

/// What kind of signed mail.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Rsa,
    Ecdsa,
    Pdf,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rsa => "rsa",
            Kind::Ecdsa => "ecdsa",
            Kind::Pdf => "pdf",
        }
    }

    /// How a reader of bench/RESULTS.md sees it.
    fn label(self) -> &'static str {
        match self {
            Kind::Rsa => "S/MIME RSA-2048",
            Kind::Ecdsa => "S/MIME ECDSA P-256",
            Kind::Pdf => "PDF + detached .p7s (RSA-2048)",
        }
    }

    fn algorithm(self) -> &'static str {
        match self {
            Kind::Ecdsa => "ECDSA P-256",
            Kind::Rsa | Kind::Pdf => "RSA-2048",
        }
    }
}

struct Args {
    messages: usize,
    size: usize,
    rounds: usize,
    /// Run only this variant (0, 1, 2), e.g. under `perf record`.
    only: Option<usize>,
    /// Only these kinds of mail.
    kinds: Vec<Kind>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        messages: 2000,
        size: 100 * 1024,
        rounds: 3,
        only: None,
        kinds: KINDS.to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a positive number"))
        };
        match flag.as_str() {
            "--messages" => args.messages = value("--messages")?,
            "--size" => args.size = value("--size")?,
            "--rounds" => args.rounds = value("--rounds")?,
            "--only" => {
                let v = it.next().ok_or("--only needs a value")?;
                args.only = Some(
                    VARIANTS
                        .iter()
                        .position(|n| *n == v)
                        .ok_or(format!("--only: {v:?} is none of {}", VARIANTS.join(", ")))?,
                );
            }
            "--kind" => {
                let v = it.next().ok_or("--kind needs a value")?;
                args.kinds = v
                    .split(',')
                    .map(|k| {
                        KINDS
                            .into_iter()
                            .find(|kind| kind.name() == k)
                            .ok_or(format!("--kind: {k:?} is none of rsa, ecdsa, pdf"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--help" | "-h" => {
                println!(
                    "qes_verify_bench [--messages N (2000)] [--size BYTES (102400)] [--rounds R (3)] \
                     [--kind rsa,ecdsa,pdf (all)] [--only verify_mail|floor|cms_verify]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.messages == 0 || args.rounds == 0 || args.size < 64 || args.kinds.is_empty() {
        return Err("--messages and --rounds must be > 0, --size >= 64, --kind not empty".into());
    }
    Ok(args)
}

struct Party {
    cert: X509,
    key: PKey<Private>,
}

/// A certificate: a CA when `email` is None, else a signing leaf for `email`; RSA-2048 unless
/// `ec` asks for a P-256 key.
fn issue(cn: &str, email: Option<&str>, issuer: Option<&Party>, serial: u32, ec: bool) -> Party {
    let key = if ec {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("pkey")
    } else {
        PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("pkey")
    };
    let build = || -> Result<X509, openssl::error::ErrorStack> {
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("C", "DE")?;
        name.append_entry_by_text("O", "demail-gateway benchmark")?;
        name.append_entry_by_text("CN", cn)?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let serial = BigNum::from_u32(serial)?;
        let serial = Asn1Integer::from_bn(&serial)?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))?;
        b.set_pubkey(&key)?;
        // Valid since yesterday: the mails are signed right after issuing.
        let not_before = Asn1Time::from_unix(OffsetDateTime::now_utc().unix_timestamp() - 86_400)?;
        let not_after = Asn1Time::days_from_now(30)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        let issuer_cert = issuer.map(|i| i.cert.as_ref());
        if email.is_none() {
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
        } else {
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .non_repudiation()
                    .build()?,
            )?;
        }
        if let Some(email) = email {
            let san = SubjectAlternativeName::new()
                .email(email)
                .build(&b.x509v3_context(issuer_cert, None))?;
            b.append_extension(san)?;
        }
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(issuer_cert, None))?;
        b.append_extension(ski)?;
        if issuer.is_some() {
            let aki = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(issuer_cert, None))?;
            b.append_extension(aki)?;
        }
        b.sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256())?;
        Ok(b.build())
    };
    let cert = build().expect("certificate");
    Party { cert, key }
}

/// One signed mail and what the other two variants start from.
struct Sample {
    mail: Vec<u8>,
    /// The signed bytes: the MIME part (CRLF), or the decoded PDF.
    content: Vec<u8>,
    cms_der: Vec<u8>,
    /// For the floor: a signature with the leaf's key over the SHA-256 digest of `content`,
    /// as CMS signs the (small) signed attributes that carry that digest.
    floor_sig: Vec<u8>,
}

/// A text/plain part of about `size` bytes, different for every message.
fn text_part(i: usize, size: usize) -> Vec<u8> {
    let mut body = format!("Content-Type: text/plain; charset=utf-8\r\n\r\nAntrag Nr. {i}\r\n");
    let line = "Sehr geehrte Damen und Herren, hiermit beantrage ich Wohngeld. 0123456789\r\n";
    while body.len() + line.len() <= size {
        body.push_str(line);
    }
    body.into_bytes()
}

/// A PDF-like document of `size` bytes: a header, then compressed-looking (binary) stream data,
/// different for every message.
fn pdf(i: usize, size: usize) -> Vec<u8> {
    let head = format!("%PDF-1.7\n%\u{e2}\u{e3}\u{cf}\u{d3}\n1 0 obj << /Nr {i} >>\nstream\n");
    let tail = b"\nendstream\nendobj\n%%EOF\n";
    let mut doc = head.into_bytes();
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while doc.len() + tail.len() < size {
        // xorshift: cheap bytes that do not repeat.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        doc.extend_from_slice(&x.to_le_bytes());
    }
    doc.extend_from_slice(tail);
    doc
}

/// Base64 in 76-character lines, as mail clients write it.
fn base64_lines(data: &[u8]) -> String {
    let b64 = openssl::base64::encode_block(data);
    let mut wrapped = String::with_capacity(b64.len() + b64.len() / 38);
    for line in b64.as_bytes().chunks(76) {
        wrapped.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        wrapped.push_str("\r\n");
    }
    wrapped
}

fn sample(
    kind: Kind,
    i: usize,
    size: usize,
    leaf: &Party,
    chain: &Stack<X509>,
    date: &str,
) -> Sample {
    let content = match kind {
        Kind::Pdf => pdf(i, size),
        Kind::Rsa | Kind::Ecdsa => text_part(i, size),
    };
    let flags = CMSOptions::DETACHED | CMSOptions::BINARY;
    let cms = CmsContentInfo::sign(
        Some(&leaf.cert),
        Some(&leaf.key),
        Some(chain),
        Some(&content),
        flags,
    )
    .expect("CMS_sign");
    let cms_der = cms.to_der().expect("CMS DER");
    let sig = base64_lines(&cms_der);
    let headers = format!(
        "From: Erika Mustermann <{SIGNER}>\r\nTo: poststelle@example.test\r\nDate: {date}\r\n\
         Subject: Antrag {i}\r\nMessage-ID: <bench-{i}@example.org>\r\nMIME-Version: 1.0\r\n"
    );
    let mail = match kind {
        Kind::Rsa | Kind::Ecdsa => {
            let mut mail = format!(
                "{headers}Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
                 micalg=sha-256; boundary=\"{BOUNDARY}\"\r\n\r\n--{BOUNDARY}\r\n"
            )
            .into_bytes();
            mail.extend_from_slice(&content);
            mail.extend_from_slice(
                format!(
                    "\r\n--{BOUNDARY}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
                     Content-Transfer-Encoding: base64\r\n\
                     Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n{sig}\r\n--{BOUNDARY}--\r\n"
                )
                .as_bytes(),
            );
            mail
        }
        Kind::Pdf => format!(
            "{headers}Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\r\n\r\n\
             --{BOUNDARY}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Sehr geehrte Damen und Herren,\r\nanbei mein Antrag Nr. {i}, qualifiziert signiert.\r\n\
             --{BOUNDARY}\r\nContent-Type: application/pdf; name=\"antrag.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"antrag.pdf\"\r\n\r\n{}\
             --{BOUNDARY}\r\nContent-Type: application/pkcs7-signature; name=\"antrag.pdf.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"antrag.pdf.p7s\"\r\n\r\n{sig}\
             --{BOUNDARY}--\r\n",
            base64_lines(&content)
        )
        .into_bytes(),
    };
    let mut signer = Signer::new(MessageDigest::sha256(), &leaf.key).expect("signer");
    let digest = hash(MessageDigest::sha256(), &content).expect("sha256");
    let floor_sig = signer.sign_oneshot_to_vec(&digest).expect("sign");
    Sample {
        mail,
        content,
        cms_der,
        floor_sig,
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Appends one result line to `$BENCH_RESULTS` (see the house rules), if set.
fn result(name: &str, value: f64, unit: &str, target: Option<(&str, bool)>) {
    let Some(path) = std::env::var_os("BENCH_RESULTS") else {
        return;
    };
    let line = serde_json::json!({
        "section": "qes",
        "name": name,
        "value": (value * 1000.0).round() / 1000.0,
        "unit": unit,
        "target": target.map(|t| t.0),
        "met": target.map(|t| t.1),
    });
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("qes_verify_bench: cannot append to {path:?}: {e}");
        std::process::exit(1);
    }
}

/// The test PKI: one root (the anchor), one intermediate, and a leaf per key type.
struct Pki {
    root: Party,
    chain: Stack<X509>,
    rsa_leaf: Party,
    ec_leaf: Party,
}

fn pki() -> Pki {
    let root = issue("Benchmark Root CA", None, None, 1, false);
    let intermediate = issue("Benchmark Intermediate CA", None, Some(&root), 2, false);
    let rsa_leaf = issue(
        "Erika Mustermann",
        Some(SIGNER),
        Some(&intermediate),
        3,
        false,
    );
    let ec_leaf = issue(
        "Erika Mustermann (EC)",
        Some(SIGNER),
        Some(&intermediate),
        4,
        true,
    );
    let mut chain = Stack::new().expect("stack");
    chain.push(intermediate.cert.clone()).expect("push");
    Pki {
        root,
        chain,
        rsa_leaf,
        ec_leaf,
    }
}

fn run_kind(args: &Args, kind: Kind, pki: &Pki, verifier: &Verifier, store: &X509Store) {
    let leaf = match kind {
        Kind::Ecdsa => &pki.ec_leaf,
        Kind::Rsa | Kind::Pdf => &pki.rsa_leaf,
    };
    let date = OffsetDateTime::now_utc()
        .format(&Rfc2822)
        .expect("RFC 2822 date");
    eprintln!(
        "{}: preparing {} signed mails of {} bytes ...",
        kind.name(),
        args.messages,
        args.size
    );
    let samples: Vec<Sample> = (0..args.messages)
        .map(|i| sample(kind, i, args.size, leaf, &pki.chain, &date))
        .collect();
    let mail_bytes = samples.iter().map(|s| s.mail.len()).sum::<usize>() / samples.len();
    println!(
        "{}: {} mails, {} bytes each on average (signed bytes {}), {} leaf, chain root -> intermediate -> leaf, {} rounds",
        kind.label(),
        args.messages,
        mail_bytes,
        samples[0].content.len(),
        kind.algorithm(),
        args.rounds
    );
    let leaf_pub: PKey<Public> =
        PKey::public_key_from_der(&leaf.key.public_key_to_der().expect("der")).expect("public key");

    let run_ours = || {
        let start = Instant::now();
        for s in &samples {
            let report = verifier.verify_mail(black_box(&s.mail));
            assert_eq!(report.indication(), Indication::TotalPassed, "{report:?}");
            assert_eq!(report.signatures.len(), 1, "{report:?}");
        }
        start.elapsed()
    };
    let run_floor = || {
        let start = Instant::now();
        for s in &samples {
            let digest = hash(MessageDigest::sha256(), black_box(&s.content)).expect("sha256");
            let mut v = PkVerifier::new(MessageDigest::sha256(), &leaf_pub).expect("verifier");
            assert!(v.verify_oneshot(&s.floor_sig, &digest).expect("verify"));
        }
        start.elapsed()
    };
    let run_cms = || {
        let start = Instant::now();
        for s in &samples {
            let mut cms = CmsContentInfo::from_der(black_box(&s.cms_der)).expect("CMS DER");
            cms.verify(
                None,
                Some(store),
                Some(&s.content),
                None,
                CMSOptions::BINARY,
            )
            .expect("CMS_verify");
        }
        start.elapsed()
    };

    let runs: [&dyn Fn() -> Duration; 3] = [&run_ours, &run_floor, &run_cms];
    if let Some(k) = args.only {
        for round in 0..args.rounds {
            let r = rate(args.messages, runs[k]());
            println!("round {}: {} {r:.0}/s", round + 1, VARIANTS[k]);
        }
        return;
    }
    // A warm-up (caches, page faults of the samples), then rounds in rotating order.
    for run in runs {
        run();
    }
    let mut rates: [Vec<f64>; 3] = Default::default();
    for round in 0..args.rounds {
        for k in 0..3 {
            let which = (round + k) % 3;
            rates[which].push(rate(args.messages, runs[which]()));
        }
        println!(
            "round {}: verify_mail {:.0}/s, floor {:.0}/s, cms_verify {:.0}/s",
            round + 1,
            rates[0][round],
            rates[1][round],
            rates[2][round]
        );
    }
    let [o, f, c] = rates.map(median);
    let ratio = o / f;
    let met = ratio >= TARGET_RATIO;
    println!("median verifications/s (one core):");
    println!("  (a) Verifier::verify_mail               {o:8.0}");
    println!("  (b) floor: SHA-256 + 1 {:<16} {f:8.0}", kind.algorithm());
    println!("  (c) CMS_verify with the chain            {c:8.0}");
    println!(
        "ratios: a/b = {ratio:.2} (target >= {TARGET_RATIO}: {}), a/c = {:.2}, c/b = {:.2}",
        if met { "met" } else { "not met" },
        o / c,
        c / f
    );
    println!();
    let label = kind.label();
    let per_s = "verifications/s";
    result(&format!("{label}: verify_mail"), o, per_s, None);
    result(
        &format!("{label}: floor (SHA-256 + 1 {})", kind.algorithm()),
        f,
        per_s,
        None,
    );
    result(&format!("{label}: OpenSSL CMS_verify"), c, per_s, None);
    result(
        &format!("{label}: verify_mail / floor"),
        ratio,
        "ratio",
        Some((&format!(">= {TARGET_RATIO}"), met)),
    );
    result(
        &format!("{label}: verify_mail / CMS_verify"),
        o / c,
        "ratio",
        None,
    );
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("qes_verify_bench: {e}");
            std::process::exit(2);
        }
    };
    let pki = pki();
    let verifier =
        Verifier::new(vec![pki.root.cert.clone()], VerifyOptions::default()).expect("verifier");
    let mut store = X509StoreBuilder::new().expect("store");
    store.add_cert(pki.root.cert.clone()).expect("anchor");
    let store = store.build();
    // One kind at a time, so only its samples are in memory.
    for kind in &args.kinds {
        run_kind(&args, *kind, &pki, &verifier, &store);
    }
}
