pub(crate) fn load(_: &std::path::Path) -> Result<crate::Config, crate::ConfigErrors> { unimplemented!("in progress") }
pub(crate) fn parse(_: &str, _: &std::path::Path) -> Result<crate::Config, crate::ConfigErrors> { unimplemented!("in progress") }
