//! Generates the protobuf and tonic code with a vendored `protoc`, so building
//! Sluice needs nothing but cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // prost-build runs whatever PROTOC names; point it at the vendored binary.
    std::env::set_var("PROTOC", protoc);
    std::env::set_var("PROTOC_INCLUDE", &include);
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        proto_dir.join("logproto.proto"),
        proto_dir.join("frontend.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&files, &[proto_dir, include])?;
    Ok(())
}
