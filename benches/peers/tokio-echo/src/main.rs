//! Placeholder: the tokio baseline echo server is being written.
fn main() {}
