//! `demailctl export <id> --out FILE`: the evidence archive of one De-Mail.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use demail_evidence::Store;
use time::OffsetDateTime;

/// Writes the archive next to `out` first and renames it, so a failed export leaves no
/// half archive. Returns false when `id` is unknown.
pub fn run(store: &Store, id: &str, out: &Path, now: OffsetDateTime) -> Result<bool, String> {
    let tmp = out.with_extension("part");
    let file = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let result = store.export(id, BufWriter::new(file), now);
    let summary = match result {
        Ok(Some(s)) => s,
        Ok(None) => {
            let _ = std::fs::remove_file(&tmp);
            return Ok(false);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.to_string());
        }
    };
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "wrote {}: {} files, {} events of {}",
        out.display(),
        summary.files.len(),
        summary.events,
        summary.private_id
    );
    if !summary.missing.is_empty() {
        println!(
            "{} blob(s) pruned, listed in MISSING.txt",
            summary.missing.len()
        );
    }
    if let Some(h) = summary.head {
        println!("chain head: event {} {}", h.event_id, h.hash);
    }
    println!(
        "re-verify: tar -xf {} && cd demail-evidence && sha256sum -c SHA256SUMS (see README.txt)",
        out.display()
    );
    Ok(true)
}
