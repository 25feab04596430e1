//! `echotool certs`: generate a CA, server and client certificate and say how to use them.

use anyhow::Result;
use echotool_secure::certs::{BundleOptions, generate_bundle, write_bundle};

use crate::cli::CertsArgs;

/// Writes the bundle and prints what each file is and the commands that use them.
pub fn run(args: CertsArgs) -> Result<()> {
    let bundle = generate_bundle(&BundleOptions::valid_for_days(args.san.clone(), args.days))
        .map_err(echotool_core::Error::from)?;
    let paths = write_bundle(&args.out, &bundle, args.force).map_err(echotool_core::Error::from)?;
    for (file, path) in bundle.files.iter().zip(&paths) {
        println!("wrote {:<24} {}", path.display(), file.description);
    }
    let dir = args.out.display();
    println!();
    println!("try:");
    println!("  echotool serve --proto tls --cert {dir}/server.pem --key {dir}/server-key.pem");
    println!("  echotool connect --proto tls --ca {dir}/ca.pem");
    println!("mutual TLS: add --client-ca {dir}/ca.pem to serve and");
    println!("  --cert {dir}/client.pem --key {dir}/client-key.pem to connect");
    Ok(())
}
