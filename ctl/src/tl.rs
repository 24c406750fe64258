//! `demailctl tl`: import ETSI TS 119 612 trusted lists (the EU list of lists and national
//! lists) into `[trust] trusted_lists`, and the lists `qes verify` uses for one run (`--tl`).
//! Verification and storage live in `demail_trust::tl`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use demail_policy::Config;
use demail_trust::tl::{self, TrustedLists};
use openssl::x509::X509;

#[derive(Subcommand)]
pub enum TlCommand {
    /// Verify trusted lists against pinned signers and store them for the verifier. The LOTL
    /// is imported first, so the signers it names for a territory pin that national list.
    Import {
        /// ETSI TS 119 612 XML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A pinned list signer certificate (PEM or DER), in addition to
        /// `[trust] list_signers`. Repeatable.
        #[arg(long)]
        signer: Vec<PathBuf>,
    },
    /// The imported lists.
    List,
}

pub fn run(command: TlCommand, config: &Config) -> Result<ExitCode, String> {
    let dir = &config.trust.trusted_lists;
    match command {
        TlCommand::Import { files, signer } => {
            let mut pinned = read_certs(&config.trust.list_signers)?;
            pinned.extend(read_certs(&signer)?);
            import(dir, files, &pinned)
        }
        TlCommand::List => {
            let lists = TrustedLists::load(dir).map_err(|e| e.to_string())?;
            if lists.is_empty() {
                println!("no trusted list imported in {}", dir.display());
            }
            for l in lists.lists() {
                println!("{}", describe(l));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import(dir: &Path, mut files: Vec<PathBuf>, pinned: &[X509]) -> Result<ExitCode, String> {
    let mut xmls = Vec::new();
    for f in files.drain(..) {
        let data = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        xmls.push((f, data));
    }
    // Lists of lists first: they pin the signers of the national lists.
    xmls.sort_by_key(|(_, data)| !looks_like_lotl(data));
    let mut failed = 0;
    for (path, xml) in &xmls {
        let known = TrustedLists::load(dir).map_err(|e| e.to_string())?;
        let name = path.display().to_string();
        match tl::import(dir, xml, &name, pinned, &known) {
            Ok(list) => println!("imported {}", describe(&list)),
            Err(e) => {
                eprintln!("demailctl: {e}; nothing imported from it");
                failed += 1;
            }
        }
    }
    if failed < xmls.len() {
        // The milter reads the lists once per configuration.
        println!(
            "a running demail-milter uses the new lists after a reload: \
             systemctl reload demail-milter (or: kill -HUP $(pidof demail-milter))"
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The list's own TSLType (the first one; pointers to other lists come after it).
fn looks_like_lotl(xml: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&xml[..xml.len().min(64 * 1024)]);
    text.split_once("TSLType>")
        .and_then(|(_, rest)| rest.split_once('<'))
        .is_some_and(|(value, _)| value.trim().ends_with("EUlistofthelists"))
}

fn describe(l: &tl::model::ListData) -> String {
    let kind = if l.lotl {
        "list of lists"
    } else {
        "trusted list"
    };
    format!(
        "{} {kind} (sequence {}, issued {}, next update {}) signed by {}: {} CA/QC services, {} pointers",
        l.territory,
        l.sequence_number.map_or("-".to_string(), |n| n.to_string()),
        l.issued.as_deref().unwrap_or("-"),
        l.next_update.as_deref().unwrap_or("-"),
        l.signed_by,
        l.services.len(),
        l.pointers.len()
    )
}

fn read_certs(paths: &[PathBuf]) -> Result<Vec<X509>, String> {
    let mut out = Vec::new();
    for p in paths {
        let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        out.extend(
            demail_trust::load_anchors(&data, &p.display().to_string())
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// The lists `qes verify` uses: the imported ones (when `config` exists and names a
/// directory with lists) plus each `--tl` file verified against `--tl-signer`. A `--tl` list
/// that does not verify is reported on stderr and contributes nothing.
pub fn lists_for_run(
    config: &Path,
    tl: &[PathBuf],
    tl_signers: &[PathBuf],
) -> Result<TrustedLists, String> {
    let mut lists = if config.is_file() {
        let config = crate::load(config)?;
        TrustedLists::load(&config.trust.trusted_lists).map_err(|e| e.to_string())?
    } else {
        TrustedLists::default()
    };
    let signers = read_certs(tl_signers)?;
    for path in tl {
        let xml = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        match TrustedLists::from_xml_verified(&xml, &signers) {
            Ok(one) => lists = lists.merged(&one).map_err(|e| e.to_string())?,
            Err(e) => eprintln!("demailctl: --tl {}: {e}; it gives no trust", path.display()),
        }
    }
    Ok(lists)
}
