//! The QES verification benchmark (bench/qes-verify runs it; see bench/README.md): N signed
//! 100 KB mails (RSA-2048, root -> intermediate -> leaf) verified three ways side by side in
//! one process, so the ratios mean something on any machine:
//!
//! - `verify_mail`: [`demail_trust::Verifier::verify_mail`] on the raw mail, what the milter
//!   does for the poststelle (MIME scan, CMS, path to the anchor, attributes, report).
//! - `floor`: SHA-256 of the signed content plus one RSA-2048 verification, with OpenSSL: the
//!   cryptography any verifier has to do per message.
//! - `cms_verify`: `openssl cms -verify -binary` through the openssl crate (`CMS_verify` with
//!   the root in the store; the intermediate travels in the CMS), on the extracted content and
//!   the decoded signature.
//!
//! Prints numbers and ratios; asserts only that every message verifies in every variant, so a
//! fast failure cannot pass for a fast success.

use std::hint::black_box;
use std::time::{Duration, Instant};

use demail_trust::{Indication, Verifier, VerifyOptions};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier as RsaVerifier};
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

const SIGNER: &str = "erika.mustermann@example.org";
const BOUNDARY: &str = "----=_bench_boundary";
const VARIANTS: [&str; 3] = ["verify_mail", "floor", "cms_verify"];

struct Args {
    messages: usize,
    size: usize,
    rounds: usize,
    /// Run only this variant (0, 1, 2), e.g. under `perf record`.
    only: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        messages: 2000,
        size: 100 * 1024,
        rounds: 3,
        only: None,
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
            "--help" | "-h" => {
                println!(
                    "qes_verify_bench [--messages N (2000)] [--size BYTES (102400)] [--rounds R (3)] \
                     [--only verify_mail|floor|cms_verify]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.messages == 0 || args.rounds == 0 || args.size < 64 {
        return Err("--messages and --rounds must be > 0, --size >= 64".into());
    }
    Ok(args)
}

struct Party {
    cert: X509,
    key: PKey<Private>,
}

/// An RSA-2048 certificate: a CA when `email` is None, else a signing leaf for `email`.
fn issue(cn: &str, email: Option<&str>, issuer: Option<&Party>, serial: u32) -> Party {
    let key = PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("pkey");
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
    /// The signed MIME part, CRLF (what the signature covers).
    content: Vec<u8>,
    cms_der: Vec<u8>,
    /// For the floor: an RSA-2048 PKCS#1 v1.5 signature over the SHA-256 digest of `content`,
    /// as CMS signs the (small) signed attributes that carry that digest.
    floor_sig: Vec<u8>,
}

/// A text/plain part of about `size` bytes, different for every message.
fn content(i: usize, size: usize) -> Vec<u8> {
    let mut body = format!("Content-Type: text/plain; charset=utf-8\r\n\r\nAntrag Nr. {i}\r\n");
    let line = "Sehr geehrte Damen und Herren, hiermit beantrage ich Wohngeld. 0123456789\r\n";
    while body.len() + line.len() <= size {
        body.push_str(line);
    }
    body.into_bytes()
}

fn sample(i: usize, size: usize, leaf: &Party, chain: &Stack<X509>, date: &str) -> Sample {
    let content = content(i, size);
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
    let mut b64 = openssl::base64::encode_block(&cms_der);
    // 76-character lines, as mail clients write them.
    let mut wrapped = String::with_capacity(b64.len() + b64.len() / 38);
    while !b64.is_empty() {
        let rest = b64.split_off(b64.len().min(76));
        wrapped.push_str(&b64);
        wrapped.push_str("\r\n");
        b64 = rest;
    }
    let mut mail = format!(
        "From: Erika Mustermann <{SIGNER}>\r\nTo: poststelle@example.test\r\nDate: {date}\r\n\
         Subject: Antrag {i}\r\nMessage-ID: <bench-{i}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg=sha-256; boundary=\"{BOUNDARY}\"\r\n\r\n--{BOUNDARY}\r\n"
    )
    .into_bytes();
    mail.extend_from_slice(&content);
    mail.extend_from_slice(
        format!(
            "\r\n--{BOUNDARY}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n{wrapped}\r\n--{BOUNDARY}--\r\n"
        )
        .as_bytes(),
    );
    let mut signer = Signer::new(MessageDigest::sha256(), &leaf.key).expect("signer");
    let digest = hash(MessageDigest::sha256(), &content).expect("sha256");
    let floor_sig = signer.sign_oneshot_to_vec(&digest).expect("RSA sign");
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

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("qes_verify_bench: {e}");
            std::process::exit(2);
        }
    };
    let root = issue("Benchmark Root CA", None, None, 1);
    let intermediate = issue("Benchmark Intermediate CA", None, Some(&root), 2);
    let leaf = issue("Erika Mustermann", Some(SIGNER), Some(&intermediate), 3);
    let mut chain = Stack::new().expect("stack");
    chain.push(intermediate.cert.clone()).expect("push");
    let date = OffsetDateTime::now_utc()
        .format(&Rfc2822)
        .expect("RFC 2822 date");

    eprintln!(
        "preparing {} signed mails of {} bytes ...",
        args.messages, args.size
    );
    let samples: Vec<Sample> = (0..args.messages)
        .map(|i| sample(i, args.size, &leaf, &chain, &date))
        .collect();
    let mail_bytes = samples.iter().map(|s| s.mail.len()).sum::<usize>() / samples.len();
    println!(
        "{} mails, {} bytes each on average (signed part {} bytes), RSA-2048, chain root -> intermediate -> leaf, {} rounds",
        args.messages,
        mail_bytes,
        samples[0].content.len(),
        args.rounds
    );

    let verifier =
        Verifier::new(vec![root.cert.clone()], VerifyOptions::default()).expect("verifier");
    let mut store = X509StoreBuilder::new().expect("store");
    store.add_cert(root.cert.clone()).expect("anchor");
    let store = store.build();
    let leaf_pub =
        PKey::public_key_from_der(&leaf.key.public_key_to_der().expect("der")).expect("public key");

    let run_ours = || {
        let start = Instant::now();
        for s in &samples {
            let report = verifier.verify_mail(black_box(&s.mail));
            assert_eq!(report.indication(), Indication::TotalPassed, "{report:?}");
        }
        start.elapsed()
    };
    let run_floor = || {
        let start = Instant::now();
        for s in &samples {
            let digest = hash(MessageDigest::sha256(), black_box(&s.content)).expect("sha256");
            let mut v = RsaVerifier::new(MessageDigest::sha256(), &leaf_pub).expect("verifier");
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
                Some(&store),
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
    println!();
    println!("median msgs/s (one core):");
    println!("  (a) Verifier::verify_mail            {o:8.0}   target >= 3000");
    println!("  (b) floor: SHA-256 + 1 RSA-2048       {f:8.0}   DESIGN.md: about 7000");
    println!("  (c) CMS_verify with the chain         {c:8.0}");
    println!(
        "ratios: a/b = {:.2}, a/c = {:.2}, c/b = {:.2}",
        o / f,
        o / c,
        c / f
    );
}
