//! Rebuilds when the embedded web UI (`frontend/index.html`, `frontend/assets/`) changes,
//! including files added or removed there (`include_bytes!` alone tracks only existing files).

fn main() {
    println!("cargo:rerun-if-changed=../../frontend/index.html");
    println!("cargo:rerun-if-changed=../../frontend/assets");
}
