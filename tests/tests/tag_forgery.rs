//! End to end through real Postfix and Dovecot: an Internet sender forges our subject tags
//! (a second `Subject`, zero-width and bidi characters, NFD, NBSP, other case, fullwidth
//! brackets, after `AW: `, inside RFC 2047 encoded-words) in mail to the poststelle and to an
//! ordinary address; what Dovecot delivers has exactly one `Subject` and no live tag. A mail
//! signed with a qualified certificate still gets `[QES gültig]`, and a qualified signature
//! on an attachment gets `[QES gültig: <signer>]`.

use std::path::Path;
use std::time::Duration;

use demail_e2e::city::{INTERN, POSTSTELLE};
use demail_e2e::message::{decode_words, field_values};
use demail_e2e::{City, CityOptions, imaplib_fetch_all, swaks, wait_until};
use demail_policy::Config;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::X509;

const PASSWORD: &str = "geheim";
const WAIT: Duration = Duration::from_secs(60);
const FORGER: &str = "forger@example.org";

/// A city whose poststelle is checked, with the city's CA as anchor and named as CA/QC by an
/// imported trusted list, and Dovecot mailboxes for the poststelle and an ordinary address.
fn city() -> City {
    let mut city = City::start(CityOptions {
        dovecot_users: vec![
            (POSTSTELLE.into(), PASSWORD.into()),
            (INTERN.into(), PASSWORD.into()),
        ],
        milter: false,
        ..CityOptions::default()
    });
    let work = city.dir().join("tl-source");
    let list = city
        .pki()
        .trusted_list(&work)
        .expect("test trusted list (xmlsec1)");
    let path = city.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "[inbound]\n",
        &format!("[inbound]\npoststelle = [\"{POSTSTELLE}\"]\n"),
        1,
    ) + &format!(
        "\n[trust]\nanchors = [\"{}\"]\ntrusted_lists = \"{}\"\nrevocation = \"off\"\n",
        city.pki().ca_cert.display(),
        city.dir().join("trust").display()
    );
    std::fs::write(&path, text).unwrap();
    let out = city.demailctl(&[
        "tl",
        "import",
        list.xml.to_str().unwrap(),
        "--signer",
        list.signer_cert.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "demailctl tl import:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    city.start_milter();
    city
}

/// An RFC 2047 "B" encoded-word of `text` (UTF-8).
fn b_word(text: &str) -> String {
    format!(
        "=?UTF-8?B?{}?=",
        openssl::base64::encode_block(text.as_bytes())
    )
}

fn plain_mail(to: &str, subjects: &[String], n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: <{FORGER}>\r\nTo: <{to}>\r\nMessage-ID: <forgery-{n}-{}@example.org>\r\n",
        to.split('@').next().unwrap()
    );
    for s in subjects {
        m.push_str(&format!("Subject: {s}\r\n"));
    }
    m.push_str(&format!(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMail {n}\r\n"
    ));
    m.into_bytes()
}

fn send(city: &City, from: &str, to: &str, mail: &[u8], name: &str) {
    let file = city.dir().join(name);
    std::fs::write(&file, mail).unwrap();
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        from,
        "--to",
        to,
        "--data",
        &format!("@{}", file.display()),
    ]);
    assert!(
        out.status.success(),
        "swaks:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn fetch(city: &City, user: &str, n: usize) -> Vec<Vec<u8>> {
    let imap = city.imap_port().expect("Dovecot runs");
    wait_until(WAIT, &format!("{n} mails for {user}"), || {
        let all = imaplib_fetch_all(imap, user, PASSWORD);
        (all.len() >= n).then_some(all)
    })
}

/// The one `Subject` of a delivered mail, decoded as a mail client shows it.
fn the_subject(mail: &[u8]) -> String {
    let subjects = field_values(mail, "Subject");
    assert_eq!(
        subjects.len(),
        1,
        "exactly one Subject:\n{}",
        String::from_utf8_lossy(mail)
    );
    decode_words(&subjects[0])
}

fn now() -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::now_utc().format(&fmt).unwrap()
}

/// A CMS signature over `data` by the qualified certificate at `cert`/`key`, DER.
fn cms(city: &City, cert: &Path, key: &Path, data: &[u8]) -> String {
    let cert = X509::from_pem(&std::fs::read(cert).unwrap()).unwrap();
    let key = PKey::private_key_from_pem(&std::fs::read(key).unwrap()).unwrap();
    let ca = X509::from_pem(&std::fs::read(&city.pki().ca_cert).unwrap()).unwrap();
    let mut chain = Stack::new().unwrap();
    chain.push(ca).unwrap();
    let flags = CMSOptions::BINARY | CMSOptions::DETACHED;
    let sig = CmsContentInfo::sign(Some(&cert), Some(&key), Some(&chain), Some(data), flags)
        .unwrap()
        .to_der()
        .unwrap();
    openssl::base64::encode_block(&sig)
}

#[test]
fn forged_tags_never_reach_a_clerk_and_earned_ones_still_do() {
    let city = city();
    let tags = Config::load(city.config_path()).unwrap().tags;

    // (Subject fields as sent, what the clerk sees.)
    let forged: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["Antrag 1".into(), "[QES gültig] Antrag 1".into()],
            "Antrag 1",
        ),
        (
            vec![b_word("AW: [QES g\u{200b}ültig] Antrag 2")],
            "AW: Antrag 2",
        ),
        (
            vec![b_word("\u{200f}[QES\u{a0}gu\u{308}ltig]\u{200e} Antrag 3")],
            "Antrag 3",
        ),
        (
            vec![format!("{} Antrag 4", b_word("\u{ff3b}qes GÜLTIG\u{ff3d}"))],
            "Antrag 4",
        ),
        (
            vec![
                b_word("Re: [De-Mail absenderbestaetigt] Antrag 5"),
                b_word("[Signatur ungültig] Antrag 5"),
            ],
            "Re: Antrag 5",
        ),
    ];
    for to in [POSTSTELLE, INTERN] {
        for (n, (subjects, _)) in forged.iter().enumerate() {
            let mail = plain_mail(to, subjects, n + 1);
            send(&city, FORGER, to, &mail, &format!("forged-{n}.eml"));
        }
    }
    for to in [INTERN, POSTSTELLE] {
        let got = fetch(&city, to, forged.len());
        for (n, (sent, want)) in forged.iter().enumerate() {
            let mail = got
                .iter()
                .find(|m| String::from_utf8_lossy(m).contains(&format!("Mail {}", n + 1)))
                .unwrap_or_else(|| panic!("mail {} for {to}", n + 1));
            let shown = the_subject(mail);
            assert_eq!(shown, *want, "{to}: {sent:?}");
            assert_eq!(tags.subject(&shown, None), None, "a live tag: {shown:?}");
            if sent.len() > 1 {
                assert_eq!(
                    field_values(mail, "X-Untrusted-Subject"),
                    vec![sent[1].clone()],
                    "{to}"
                );
            }
        }
    }

    // The happy side: a qualified signature on the message itself earns the plain tag (the
    // forged one in front goes), one on an attachment names its signer.
    let issued = city
        .pki()
        .issue_qualified("max", "Max Mustermann")
        .expect("qualified certificate");
    let part = "Content-Type: text/plain; charset=utf-8\r\n\r\nAntrag auf Wohngeld.\r\n";
    let signed = format!(
        "From: <{FORGER}>\r\nTo: <{POSTSTELLE}>\r\nDate: {}\r\n\
         Message-ID: <qes-message@example.org>\r\nSubject: AW: [QES gültig] Antrag 6\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg=sha-256; boundary=\"sig\"\r\n\r\n\
         --sig\r\n{part}\r\n--sig\r\n\
         Content-Type: application/pkcs7-signature; name=smime.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=smime.p7s\r\n\r\n{}\r\n--sig--\r\n",
        now(),
        cms(&city, &issued.cert, &issued.key, part.as_bytes())
    );
    send(
        &city,
        FORGER,
        POSTSTELLE,
        signed.as_bytes(),
        "qes-message.eml",
    );
    let pdf = b"%PDF-1.4\r\n% Bescheid\r\n%%EOF\r\n";
    let attached = format!(
        "From: <{FORGER}>\r\nTo: <{POSTSTELLE}>\r\nDate: {}\r\n\
         Message-ID: <qes-attachment@example.org>\r\nSubject: [QES gültig] Antrag 7\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
         --mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei der Bescheid.\r\n\
         --mix\r\nContent-Type: application/pdf; name=bescheid.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=bescheid.pdf\r\n\r\n{}\r\n\
         --mix\r\nContent-Type: application/pkcs7-signature; name=bescheid.pdf.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=bescheid.pdf.p7s\r\n\r\n{}\r\n--mix--\r\n",
        now(),
        openssl::base64::encode_block(pdf),
        cms(&city, &issued.cert, &issued.key, pdf)
    );
    send(
        &city,
        FORGER,
        POSTSTELLE,
        attached.as_bytes(),
        "qes-attachment.eml",
    );
    let got = fetch(&city, POSTSTELLE, forged.len() + 2);
    let by_id = |id: &str| {
        got.iter()
            .find(|m| String::from_utf8_lossy(m).contains(id))
            .unwrap_or_else(|| panic!("{id} delivered"))
    };
    for (id, want) in [
        ("<qes-message@example.org>", "[QES gültig] AW: Antrag 6"),
        (
            "<qes-attachment@example.org>",
            "[QES gültig: Max Mustermann] Antrag 7",
        ),
    ] {
        let mail = by_id(id);
        let field = field_values(mail, "X-QES-Validation");
        assert_eq!(field.len(), 1, "{}", String::from_utf8_lossy(mail));
        assert!(field[0].contains("qualification=QESig;"), "{}", field[0]);
        assert_eq!(the_subject(mail), want);
    }
}
