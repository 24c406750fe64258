//! Negotiation: the milter asks for exactly the actions it uses, exact header values and the
//! macros it reads; an MTA that cannot grant them gets no session (Postfix then applies
//! milter_default_action, i.e. tempfail).

mod common;

use std::time::Duration;

use common::*;
use indymilter_test::{Actions, MacroStage, ProtoOpts, TestConnection};

#[tokio::test]
async fn requests_actions_options_and_macros() {
    let milter = Milter::start().await;
    let conn = milter.open().await;
    assert_eq!(
        conn.negotiated_actions() - Actions::REQUEST_MACROS,
        Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::CHANGE_SENDER
    );
    assert!(conn.negotiated_opts().contains(ProtoOpts::LEADING_SPACE));
    assert!(!conn.negotiated_opts().contains(ProtoOpts::NO_DATA));
    let macros = conn.requested_macros();
    let has = |stage, name: &str| {
        macros
            .get(&stage)
            .is_some_and(|m| m.to_str().unwrap().split(' ').any(|n| n == name))
    };
    for (stage, name) in [
        (MacroStage::Connect, "{daemon_name}"),
        (MacroStage::Connect, "{client_addr}"),
        (MacroStage::Connect, "j"),
        (MacroStage::Helo, "{cert_subject}"),
        (MacroStage::Mail, "i"),
        (MacroStage::Mail, "{auth_authen}"),
        (MacroStage::Mail, "{mail_addr}"),
        (MacroStage::Mail, "{cert_issuer}"),
        (MacroStage::Eoh, "i"),
        (MacroStage::Eom, "i"),
    ] {
        assert!(
            has(stage, name),
            "{name} not requested at {stage:?}: {macros:?}"
        );
    }
    conn.close().await.unwrap();
    milter.stop().await;
}

#[tokio::test]
async fn refuses_an_mta_without_the_needed_actions_or_options() {
    let milter = Milter::start().await;
    let open = |actions, opts| {
        TestConnection::configure()
            .read_timeout(Duration::from_secs(5))
            .available_actions(actions)
            .available_opts(opts)
            .open_tcp(milter.addr)
    };
    let no_chgfrom = Actions::all() - Actions::CHANGE_SENDER;
    assert!(open(no_chgfrom, ProtoOpts::all()).await.is_err());
    let no_leadspace = ProtoOpts::all() - ProtoOpts::LEADING_SPACE;
    assert!(open(Actions::all(), no_leadspace).await.is_err());
    assert!(open(Actions::all(), ProtoOpts::all()).await.is_ok());
    milter.stop().await;
}
