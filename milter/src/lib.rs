//! demail-milter library.
