//! A body larger than the in-memory spool (1 MiB) is spooled to disk and recorded intact.

mod common;

use common::*;
use indymilter_test::Status;

#[tokio::test]
async fn large_body_is_recorded_byte_for_byte() {
    let milter = Milter::start().await;
    let mut mail = Mail::new(
        "erika.muster@magdeburg.example",
        &["buerger@example.de-mail.de"],
    );
    let mut body = Vec::new();
    let mut n = 0u32;
    while body.len() < 3 * 1024 * 1024 {
        body.extend_from_slice(format!("Zeile {n:07}: Grüße aus Magdeburg\r\n").as_bytes());
        n += 1;
    }
    mail.body = body;

    let mut conn = milter.open().await;
    let out = transact(&mut conn, &mail).await;
    let (actions, status) = out.eom.expect("end of message");
    assert_eq!(status, Status::Accept);
    conn.close().await.unwrap();

    let expected = postfix_result(&mail, &actions);
    let record = recorded(&milter, &mail).expect("recorded");
    assert_eq!(record.size, expected.len() as u64);
    assert_eq!(milter.store().read_blob(&record.content).unwrap(), expected);
    milter.stop().await;
}
