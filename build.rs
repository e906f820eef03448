//! Compiles the protos with protox (pure Rust: no system `protoc` needed) and keeps the descriptor
//! set for the reflection service.
use std::{env, fs, path::PathBuf};

use protox::prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = [
        "audiohm/library/v1/library.proto",
        "audiohm/library/v1/admin.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("library_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Unparseable requests are the client's fault: see src/grpc/codec.rs.
        .codec_path("crate::grpc::codec::LibraryCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
