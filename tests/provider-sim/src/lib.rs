//! provider simulator
