//! A minimal PDF 1.4 written by hand: lines of text in Helvetica (WinAnsiEncoding), as many
//! A4 pages as needed, with an exact cross-reference table.

/// Characters per line before wrapping (Helvetica 9 pt on A4 with 2 cm margins).
const WRAP: usize = 95;
const LINES_PER_PAGE: usize = 62;
const FONT_SIZE: u32 = 9;
const LEADING: u32 = 12;
const TOP: u32 = 800;
const LEFT: u32 = 56;

/// The PDF bytes showing `lines` (each wrapped at [`WRAP`] characters).
pub fn text_document(title: &str, lines: &[String]) -> Vec<u8> {
    let wrapped: Vec<String> = lines.iter().flat_map(|l| wrap(l)).collect();
    let pages: Vec<&[String]> = if wrapped.is_empty() {
        vec![&[][..]]
    } else {
        wrapped.chunks(LINES_PER_PAGE).collect()
    };
    // Objects: 1 catalog, 2 pages, 3 font, 4 info, then (page, content) pairs.
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 5 + 2 * i))
        .collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    let mut info = b"<< /Producer (demail-provider-sim) /Title ".to_vec();
    info.extend(pdf_string(title));
    info.extend_from_slice(b" >>");
    objects.push(info);
    for (i, page) in pages.iter().enumerate() {
        let content_ref = 6 + 2 * i;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {content_ref} 0 R >>"
            )
            .into_bytes(),
        );
        let mut stream =
            format!("BT /F1 {FONT_SIZE} Tf {LEADING} TL {LEFT} {TOP} Td\n").into_bytes();
        for line in page.iter() {
            stream.extend(pdf_string(line));
            stream.extend_from_slice(b" Tj T*\n");
        }
        stream.extend_from_slice(b"ET\n");
        let mut obj = format!("<< /Length {} >>\nstream\n", stream.len()).into_bytes();
        obj.extend(stream);
        obj.extend_from_slice(b"endstream");
        objects.push(obj);
    }

    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
    for off in offsets {
        out.extend(format!("{off:010} 00000 n \n").into_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .into_bytes(),
    );
    out
}

fn wrap(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(WRAP)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

/// A literal string in WinAnsi (Latin-1 for the characters German text needs); others `?`.
fn pdf_string(text: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            c if (' '..='~').contains(&c) => out.push(c as u8),
            c if ('\u{a0}'..='\u{ff}').contains(&c) => out.push(c as u32 as u8),
            '€' => out.push(0x80),
            _ => out.push(b'?'),
        }
    }
    out.push(b')');
    out
}

/// Structural check used by the tests: the header, every xref offset pointing at its
/// object, stream lengths, and `startxref` pointing at the table. Returns the text shown.
pub fn check_structure(pdf: &[u8]) -> Result<Vec<String>, String> {
    // One char per byte, so string positions are byte offsets.
    let text: String = pdf.iter().map(|&b| b as char).collect::<String>();
    let text: String = text
        .chars()
        .map(|c| if c.is_ascii() { c } else { '\x7f' })
        .collect();
    if !pdf.starts_with(b"%PDF-1.") || !text.trim_end().ends_with("%%EOF") {
        return Err("header or %%EOF missing".into());
    }
    let sx = text.rfind("startxref\n").ok_or("no startxref")?;
    let xref: usize = text[sx + 10..]
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("startxref is not a number")?;
    if pdf.get(xref..xref + 5) != Some(b"xref\n") {
        return Err(format!("startxref {xref} does not point at the xref table"));
    }
    let mut lines = text[xref..].lines().skip(1);
    let count: usize = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .ok_or("bad xref subsection")?;
    lines.next(); // object 0, the free list head
    for n in 1..count {
        let entry = lines.next().ok_or("xref table too short")?;
        let off: usize = entry
            .get(..10)
            .and_then(|o| o.parse().ok())
            .ok_or_else(|| format!("bad xref entry {entry:?}"))?;
        let expect = format!("{n} 0 obj\n");
        if pdf.get(off..off + expect.len()) != Some(expect.as_bytes()) {
            return Err(format!("xref entry {n} points at {off}, not at its object"));
        }
    }
    let mut shown = Vec::new();
    let mut rest = &text[..];
    while let Some(i) = rest.find("/Length ") {
        let after = &rest[i + 8..];
        let len: usize = after
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or("bad /Length")?;
        let start = after.find("stream\n").ok_or("no stream")? + 7;
        let at = text.len() - after.len() + start;
        let body: String = pdf
            .get(at..at + len)
            .ok_or("stream shorter than /Length")?
            .iter()
            .map(|&b| b as char) // WinAnsi is Latin-1 for the characters we write
            .collect();
        if !after[start + len..].starts_with("endstream") {
            return Err("/Length does not end at endstream".into());
        }
        for l in body.lines().filter(|l| l.ends_with(" Tj T*")) {
            let s = &l[1..l.len() - 7];
            shown.push(
                s.replace("\\(", "(")
                    .replace("\\)", ")")
                    .replace("\\\\", "\\"),
            );
        }
        rest = &after[start + len..];
    }
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_structurally_sound_and_shows_the_lines() {
        let lines = vec![
            "Absender: info@magdeburg.de-mail.de".to_string(),
            "Betreff: (Bescheid) über \\ Wohngeld".to_string(),
            "x".repeat(200),
        ];
        let pdf = text_document("Versandbestätigung", &lines);
        let shown = check_structure(&pdf).expect("sound");
        assert_eq!(shown[0], "Absender: info@magdeburg.de-mail.de");
        assert_eq!(shown[1], "Betreff: (Bescheid) über \\ Wohngeld");
        assert_eq!(shown.len(), 5, "200 characters wrap into three lines");
    }

    #[test]
    fn many_lines_make_several_pages() {
        let lines: Vec<String> = (0..150).map(|i| format!("Zeile {i}")).collect();
        let pdf = text_document("t", &lines);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 3"));
        assert_eq!(check_structure(&pdf).expect("sound").len(), 150);
    }

    #[test]
    fn a_shifted_offset_is_detected() {
        let mut pdf = text_document("t", &["a".to_string()]);
        let i = pdf
            .windows(8)
            .position(|w| w == b"1 0 obj\n")
            .expect("obj 1");
        pdf.insert(i, b' ');
        assert!(check_structure(&pdf).is_err());
    }
}
