use crate::*;
pub(crate) fn classify<'a>(_: &'a Config, _: &str) -> AddressClass<'a> { unimplemented!("in progress") }
pub(crate) fn check_recipients<S: AsRef<str>>(_: &Config, _: &[S]) -> Result<RecipientMix, Refusal> { unimplemented!("in progress") }
pub(crate) fn authorise_sender<'a>(_: &'a Config, _: &str, _: Option<&str>) -> Result<SenderGrant<'a>, Refusal> { unimplemented!("in progress") }
pub(crate) fn resolve_options(_: &Config, _: SenderGrant<'_>, _: &str, _: Option<&str>) -> Result<ResolvedOptions, Refusal> { unimplemented!("in progress") }
pub(crate) fn visible_accounts<'a>(_: &'a Config, _: &str) -> Vec<&'a Account> { unimplemented!("in progress") }
pub(crate) fn is_poststelle(_: &Config, _: &str) -> bool { unimplemented!("in progress") }
