//! The Edge reference server.
