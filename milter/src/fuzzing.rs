//! Entry points for the fuzz targets in `fuzz/` into parsers this crate keeps private. Not an
//! API: hidden from the documentation and free to change with the targets.

use crate::inbound::statement::{self, NAMESPACE, Statement};

/// A confirmation or notification as it arrives: the XML and PDF parts found by content, and
/// what the XML states. Returns whether an XML part was found.
pub fn confirmation(raw: &[u8]) -> bool {
    let parts = statement::find(raw);
    if let Some(pdf) = &parts.pdf {
        assert!(pdf.starts_with(b"%PDF-"));
    }
    let Some((xml, stated)) = &parts.xml else {
        assert!(!parts.problems.is_empty(), "no XML part and no reason why");
        return false;
    };
    assert!(
        xml.windows(NAMESPACE.len())
            .any(|w| w == NAMESPACE.as_bytes()),
        "an XML part without the namespace was taken"
    );
    assert_eq!(
        statement::parse(xml).as_ref(),
        Ok(stated),
        "the same XML part read differently"
    );
    check_statement(stated);
    true
}

/// The confirmation XML alone.
pub fn confirmation_xml(xml: &[u8]) {
    if let Ok(s) = statement::parse(xml) {
        check_statement(&s);
    }
}

/// A statement has a root, and every text it took is trimmed (matching compares it as is).
fn check_statement(s: &Statement) {
    assert!(s.root.is_some(), "a statement without its root element");
    let texts = [
        &s.sender,
        &s.subject,
        &s.text,
        &s.hash,
        &s.time,
        &s.delivery_time,
    ];
    for t in texts.into_iter().flatten() {
        assert_eq!(t.trim(), t, "untrimmed text in a statement");
    }
    for (name, value) in &s.metadata {
        assert_eq!(name.trim(), name);
        assert_eq!(value.trim(), value);
        assert!(s.meta(name).next().is_some());
    }
}
